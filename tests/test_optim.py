"""Losses, optimizers and the learning-rate schedule: warm-up composed with every scheduler."""
import pytest
import torch
from torch import nn

from trainlab.optim import Schedule, build_optimizer, build_scheduler


def schedule(name, warmup=0, epochs=4, steps=5, **kw):
    opt = build_optimizer(nn.Linear(2, 1).parameters(), "sgd", 0.1, momentum=0.9)
    sched, per_step = build_scheduler(opt, name, epochs=epochs, steps_per_epoch=steps, **kw)
    return opt, Schedule(opt, sched, per_step, warmup)


def lrs(opt, s, epochs=4, steps=5, metric=lambda e: 0.0):
    """The lr of every optimizer step of a run (what the step used)."""
    out = []
    for e in range(epochs):
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            s.after_step()
        s.after_epoch(metric(e))
    return out


@pytest.mark.parametrize("name,kw", [("none", {}), ("step", dict(step_size=1, gamma=0.5)),
                                     ("cosine", {}), ("onecycle", {}), ("plateau", dict(gamma=0.5, lr_patience=0))])
def test_warmup_ramps_then_hands_over_to_the_scheduler(name, kw):
    plain = lrs(*schedule(name, **kw))
    warm = lrs(*schedule(name, warmup=4, **kw))
    assert warm[:4] == pytest.approx([plain[i] * (i + 1) / 5 for i in range(4)])
    assert warm[4:] == pytest.approx(plain[4:])  # after the warm-up: exactly the scheduler's own lr


def test_plateau_reduces_after_lr_patience_epochs_without_improvement():
    opt, s = schedule("plateau", gamma=0.1, lr_patience=1)
    per_epoch = lrs(opt, s, metric=lambda e: 0.5)[::5]  # a score that never improves
    assert per_epoch == pytest.approx([0.1, 0.1, 0.1, 0.01])


def test_schedule_state_round_trips_mid_warmup():
    opt, s = schedule("multistep", warmup=6, milestones=[1, 2], gamma=0.5)
    lrs(opt, s, epochs=1)
    state = s.state_dict()
    assert isinstance(state["scheduler"]["milestones"], dict)  # weights_only-safe, not a Counter
    opt2, s2 = schedule("multistep", warmup=6, milestones=[1, 2], gamma=0.5)
    opt2.load_state_dict(opt.state_dict())
    s2.load_state_dict(state)
    assert lrs(opt2, s2, epochs=3) == pytest.approx(lrs(opt, s, epochs=3))


def test_clip_grad_norm_is_applied_before_the_step(blobs, quiet, monkeypatch):
    import trainlab

    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    seen = []  # the gradient norm each optimizer step sees
    real = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item())
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    trainlab.fit(model, *blobs, epochs=1, lr=1.0, batch_size=16, **quiet)
    assert max(seen) > 0.1  # unclipped gradients are larger than the limit below
    seen.clear()
    trainlab.fit(model, *blobs, epochs=1, lr=1.0, clip_grad_norm=0.05, batch_size=16, **quiet)
    assert len(seen) == 15 and max(seen) <= 0.05 + 1e-6
