"""Losses, optimizers and the learning-rate schedule: warm-up composed with every scheduler."""
import pytest
import torch
from torch import nn

from trainlab.optim import Schedule, build_optimizer, build_scheduler, param_groups


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


class Mixed(nn.Module):
    """Every kind of parameter param_groups sorts: conv/linear weights and biases, norm layers, a frozen one."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.gn = nn.GroupNorm(2, 4)
        self.fc = nn.Linear(4, 3)
        self.ln = nn.LayerNorm(3)
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)

    def forward(self, x):  # (B, 3, H, W) -> (B, 3)
        x = self.gn(self.bn(self.conv(x))).amax((2, 3))
        return self.frozen(self.ln(self.fc(x)))


def test_bias_lr_scale_groups_biases_and_norm_layers_with_the_same_decay_per_step():
    m = Mixed()
    opt = build_optimizer(param_groups(m, 64.0), "sgd", 0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    main, biases = opt.param_groups
    assert [id(p) for p in main["params"]] == [id(m.conv.weight), id(m.fc.weight)]
    assert {id(p) for p in biases["params"]} == {id(p) for p in (m.conv.bias, m.bn.weight, m.bn.bias, m.gn.weight,
                                                                   m.gn.bias, m.fc.bias, m.ln.weight, m.ln.bias)}
    assert (main["lr"], main["weight_decay"]) == (0.1, 1e-3)
    assert biases["lr"] == pytest.approx(6.4) and biases["weight_decay"] == pytest.approx(1e-3 / 64)
    assert biases["lr"] * biases["weight_decay"] == pytest.approx(main["lr"] * main["weight_decay"])
    assert main["fused"] and biases["fused"]  # still torch's fused kernel
    one = build_optimizer(param_groups(m), "adamw", 0.1)  # scale 1: one group of every trainable parameter
    assert len(one.param_groups) == 1 and one.param_groups[0]["params"] == [p for p in m.parameters() if p.requires_grad]


@pytest.mark.parametrize("name,kw", [("none", {}), ("step", dict(step_size=1, gamma=0.5)),
                                     ("multistep", dict(milestones=[1, 3], gamma=0.5)), ("cosine", {}),
                                     ("onecycle", {}), ("onecycle", dict(max_lr=0.4)),
                                     ("plateau", dict(gamma=0.5, lr_patience=0)),
                                     ("linear", dict(start_factor=0.2, peak_at=0.25, end_factor=0.1))])
def test_every_schedule_keeps_the_groups_ratio(name, kw):
    opt = build_optimizer(param_groups(Mixed(), 8.0), "sgd", 0.1, momentum=0.9)
    sched, per_step = build_scheduler(opt, name, epochs=4, steps_per_epoch=5, **kw)
    s = Schedule(opt, sched, per_step, warmup_steps=3)
    seen = []
    for e in range(4):
        for _ in range(5):
            seen.append([g["lr"] for g in opt.param_groups])
            opt.step()
            s.after_step()
        s.after_epoch(0.0)
    assert all(b == pytest.approx(8.0 * a) for a, b in seen)
    assert len({round(a, 9) for a, _ in seen}) > 1  # the lr did move (warm-up at least)
    if name == "onecycle":
        assert max(a for a, _ in seen) == pytest.approx(kw.get("max_lr", 0.1), rel=0.05)  # the main group's peak


def test_linear_schedule_is_a_triangle():
    opt, s = schedule("linear", epochs=4, steps=25, start_factor=0.2, peak_at=0.23, end_factor=0.07)
    got = lrs(opt, s, epochs=4, steps=25)
    assert got[0] == pytest.approx(0.02) and got[23] == pytest.approx(0.1)  # peak at int(0.23 x 100)
    assert got[11] == pytest.approx(0.1 * (0.2 + 0.8 * 11 / 23))
    assert got[-1] == pytest.approx(0.1 * (1 - 0.93 * 76 / 77))  # the last step, one short of the end
    assert opt.param_groups[0]["lr"] == pytest.approx(0.007)  # after it: end_factor x lr
    plain = lrs(*schedule("linear", epochs=1, steps=10), epochs=1, steps=10)  # defaults: from lr straight down to 0
    assert plain == pytest.approx([0.1 * (1 - k / 10) for k in range(10)])


def test_metrics_lr_is_the_main_groups_and_resume_stays_exact(runs):
    import trainlab
    from conftest import QUIET, assert_bitwise_equal, weights
    from trainlab import checkpoint
    from trainlab.config import from_dict

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 3, 6, 6, generator=g), torch.randint(0, 3, (96,), generator=g)
    opts = dict(epochs=3, batch_size=16, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-3, bias_lr_scale=16,
                scheduler="linear", start_factor=0.2, peak_at=0.3, end_factor=0.1, threads=1, out_dir=str(runs),
                log_every=4, **QUIET)
    torch.manual_seed(0)
    full = trainlab.fit(Mixed(), (x, y), (x, y), name="full", **opts)
    assert full.history[-1]["lr"] == pytest.approx(0.05 * 0.1)  # the main group's lr, not 16 x
    torch.manual_seed(0)
    trainlab.fit(Mixed(), (x, y), (x, y), name="part", max_steps=7, **opts)  # stops mid-epoch 2
    state = checkpoint.load(runs / "part" / "checkpoints" / "last.pt")
    assert [len(g["params"]) for g in state["optimizer"]["param_groups"]] == [2, 8]  # the frozen layer left out
    torch.manual_seed(1)  # another fresh model: everything must come from the checkpoint
    config = from_dict({**state["config"], "max_steps": 0})  # as `trainlab train --resume` does
    trainlab.fit(Mixed(), (x, y), (x, y), config=config, resume=runs / "part/checkpoints/last.pt")
    assert_bitwise_equal(weights(full.run_dir), weights(runs / "part"))


@pytest.mark.parametrize("key,value,message", [
    ("bias_lr_scale", 0, "must be positive"), ("bias_lr_scale", -2, "must be positive"),
    ("bias_lr_scale", "nan", "must be a finite number"), ("peak_at", 1.5, r"must be in \[0, 1\]"),
    ("start_factor", -0.1, "must be 0 or more"), ("end_factor", -1, "must be 0 or more"),
    ("scheduler", "triangle", "allowed values are .*linear"),
])
def test_bad_schedule_and_group_values_name_the_key(key, value, message):
    from trainlab.config import make_config
    from trainlab.errors import UserError

    with pytest.raises(UserError, match=f"'{key}': {message}"):
        make_config(None, {key: value})
