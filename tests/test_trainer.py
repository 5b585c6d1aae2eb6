import signal

import pytest
import torch
from torch import nn

import trainlab
from conftest import QUIET, assert_bitwise_equal, weights
from trainlab import api, checkpoint
from trainlab.errors import Diverged, Interrupted


def test_mnist_resume_after_max_steps_is_bitwise_exact(runs):
    # one thread count for both runs: CPU sums depend on it (threads=auto could pick 2, then 1)
    common = dict(epochs=2, out_dir=str(runs), log_every=7, threads=2, **QUIET)
    full = api.train("mnist-cnn", name="full", **common)
    part = api.train("mnist-cnn", name="part", max_steps=100, **common)  # stops mid-epoch 2
    assert checkpoint.load(part.run_dir / "checkpoints" / "last.pt")["step"] == 100
    resumed = api.resume(str(part.run_dir))
    assert resumed.run_dir == part.run_dir
    assert_bitwise_equal(weights(full.run_dir), weights(part.run_dir))
    assert full.history[-1]["train_loss"] == resumed.history[-1]["train_loss"]


class DropoutNet(nn.Module):
    """Uses the global torch RNG in every step, so resume must restore it."""

    def __init__(self, interrupt_at: int = 0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        self.calls, self.interrupt_at = 0, interrupt_at

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.interrupt_at:
                signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C here
        return self.net(x)


def fit_blobs(blobs, runs, name, interrupt_at=0, **kw):
    torch.manual_seed(0)
    model = DropoutNet(interrupt_at)
    opts = dict(epochs=3, batch_size=16, optimizer="adam", lr=0.01, scheduler="cosine", grad_accum=2,
                out_dir=str(runs), name=name, tensorboard=False, log_every=3, seed=1)
    opts.update(kw)
    return trainlab.fit(model, *blobs, **opts)


def test_ctrl_c_saves_checkpoint_and_resume_is_exact(blobs, runs):
    full = fit_blobs(blobs, runs, "full")
    with pytest.raises(Interrupted, match=r"interrupted at step 11; checkpoint .*last.pt"):
        fit_blobs(blobs, runs, "cut", interrupt_at=21)  # micro-batch 21 = step 11
    torch.manual_seed(123)  # a different fresh model: everything must come from the checkpoint
    resumed = trainlab.fit(DropoutNet(), *blobs, config=checkpoint_config(runs / "cut"), resume=runs / "cut/checkpoints/last.pt")
    assert_bitwise_equal(weights(full.run_dir), weights(resumed.run_dir))
    assert resumed.metrics["accuracy"] > 0.9


def checkpoint_config(run_dir):
    from trainlab.config import from_dict

    return from_dict(checkpoint.load(run_dir / "checkpoints" / "last.pt")["config"])


@pytest.mark.parametrize("n", [224, 232])  # 232: 29 batches of 8, so each epoch ends with a group of 1
def test_gradient_accumulation_equals_one_larger_batch(blobs, runs, n):
    (x, y), val = blobs
    results = []
    for batch, accum in ((8, 4), (32, 1)):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
        trainlab.fit(model, (x[:n], y[:n]), val, epochs=2, batch_size=batch, grad_accum=accum, lr=0.1,
                     out_dir=str(runs), name=f"acc{accum}", tensorboard=False, plots=False)
        results.append(model.state_dict())
    for k in results[0]:
        assert torch.allclose(results[0][k], results[1][k], atol=1e-6), k


class NaNAfter(nn.Module):
    def __init__(self, step: int):
        super().__init__()
        self.lin, self.calls, self.step = nn.Linear(2, 3), 0, step

    def forward(self, x):
        self.calls += self.training
        out = self.lin(x)
        return out * float("nan") if self.training and self.calls >= self.step else out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(blobs, runs):
    # 240 samples / batch 16 = 15 steps per epoch; the NaN comes at step 20, in epoch 2
    with pytest.raises(Diverged, match=r"loss became nan at step 20 \(epoch 2\); stopped, the last good checkpoint is .*last.pt"):
        trainlab.fit(NaNAfter(20), *blobs, epochs=3, batch_size=16, out_dir=str(runs), name="nan", tensorboard=False, log_every=4)
    state = checkpoint.load(runs / "nan/checkpoints/last.pt")
    assert state["step"] == 15 and all(torch.isfinite(t).all() for t in state["model"].values())


@pytest.mark.parametrize("loss,model,y_kind", [
    ("cross_entropy", lambda: nn.Linear(2, 3), "class"),
    ("nll", lambda: nn.Sequential(nn.Linear(2, 3), nn.LogSoftmax(1)), "class"),
    ("bce", lambda: nn.Sequential(nn.Linear(2, 1), nn.Sigmoid()), "binary"),
    ("bce_logits", lambda: nn.Linear(2, 1), "binary"),
    ("mse", lambda: nn.Linear(2, 1), "value"),
    ("l1", lambda: nn.Linear(2, 1), "value"),
])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_every_loss_trains(blobs, runs, loss, model, y_kind, reduction):
    (x, y), (xv, yv) = blobs
    if y_kind == "binary":
        y, yv = (y == 0).long(), (yv == 0).long()
    if y_kind == "value":
        y, yv = x[:, :1] * 3.0 + 1.0, xv[:, :1] * 3.0 + 1.0
    lr = 0.05 if reduction == "mean" else 0.002
    r = trainlab.fit(model(), (x, y), (xv, yv), epochs=8, lr=lr, momentum=0.9, loss=loss, reduction=reduction,
                     batch_size=16, out_dir=str(runs), tensorboard=False, plots=False)
    first, last = r.history[0]["train_loss"], r.history[-1]["train_loss"]
    assert last < first
    if y_kind != "value":
        assert r.metrics["accuracy"] > 0.9
    else:
        assert "accuracy" not in r.metrics and r.metrics["loss"] < 0.5 and r.history[-1]["train_acc"] is None


@pytest.mark.parametrize("scheduler,extra,lr_after", [
    ("step", dict(step_size=2, gamma=0.1), [0.1, 0.1, 0.01, 0.01]),
    ("multistep", dict(milestones=[1, 3], gamma=0.5), [0.1, 0.05, 0.05, 0.025]),
])
def test_epoch_schedulers(blobs, runs, scheduler, extra, lr_after):
    r = trainlab.fit(nn.Linear(2, 3), *blobs, epochs=4, lr=0.1, scheduler=scheduler, out_dir=str(runs),
                     tensorboard=False, **extra)
    assert [round(h["lr"], 6) for h in r.history] == lr_after


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_step_schedulers_reach_their_end(blobs, runs, scheduler):
    model = nn.Linear(2, 3)
    r = trainlab.fit(model, *blobs, epochs=2, lr=0.1, optimizer="sgd", momentum=0.9, nesterov=True,
                     scheduler=scheduler, batch_size=16, out_dir=str(runs), tensorboard=False, plots=False)
    state = checkpoint.load(r.run_dir / "checkpoints" / "last.pt")
    assert state["scheduler"]["scheduler"]["last_epoch"] == 30  # 2 epochs x 15 steps
    halfway = r.history[0]["lr"]  # the lr in effect at the end of epoch 1, half way through
    assert halfway == pytest.approx(0.05) if scheduler == "cosine" else 0.004 < halfway < 0.1


def test_optimizers_and_weight_decay(blobs, runs):
    for opt in ("sgd", "adam", "adamw"):
        r = trainlab.fit(nn.Linear(2, 3), *blobs, epochs=3, lr=0.05, optimizer=opt, weight_decay=1e-4,
                         out_dir=str(runs), tensorboard=False, plots=False)
        assert r.metrics["accuracy"] > 0.9, opt


def test_wrong_input_shape_is_a_clear_error(blobs, runs):
    with pytest.raises(trainlab.UserError, match=r"does not accept inputs of shape \(2,\)"):
        trainlab.fit(nn.Linear(5, 3), *blobs, out_dir=str(runs))
    with pytest.raises(trainlab.UserError, match=r"outputs shape \(4,\) but the data have 3 classes"):
        trainlab.fit(nn.Linear(2, 4), *blobs, out_dir=str(runs))


def test_run_folder_contents(blobs, runs):
    r = trainlab.fit(nn.Linear(2, 3), *blobs, epochs=2, out_dir=str(runs), name="demo")
    files = {p.name for p in r.run_dir.iterdir()}
    assert {"config.yaml", "metrics.csv", "checkpoints"} <= files
    assert any(f.startswith("events.out.tfevents") for f in files)
    lines = (r.run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,step,train_loss,train_acc,val_loss,val_acc,lr,seconds" and len(lines) == 3
    assert 0.3 < r.history[-1]["train_acc"] <= 1.0  # a classifier: right answers on its training batches
    state = checkpoint.load(r.run_dir / "checkpoints" / "best.pt")
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "epoch", "step", "config"} <= state.keys()
    assert {"python", "numpy", "torch"} <= state["rng"].keys() and "generator" in state["loader"]
    again = trainlab.fit(nn.Linear(2, 3), *blobs, epochs=1, out_dir=str(runs), name="demo", tensorboard=False, plots=False)
    assert again.run_dir.name == "demo-2"


def test_max_steps_counts_from_the_resumed_step(blobs, runs, quiet):
    common = dict(epochs=4, batch_size=16, name="r", **quiet)
    trainlab.fit(nn.Linear(2, 3), *blobs, max_steps=5, **common)
    last = runs / "r" / "checkpoints" / "last.pt"
    cfg = trainlab.config.from_dict({**checkpoint.load(last)["config"], "max_steps": 2})
    trainlab.fit(nn.Linear(2, 3), *blobs, config=cfg, resume=last)
    assert checkpoint.load(last)["step"] == 7


class Killed(BaseException):
    """Stands in for kill -9: nothing after the raise point runs (no except/cleanup in the trainer)."""


def kill_after(monkeypatch, target, name, when):
    """Make `target.name` raise Killed right after a call for which `when(*args)` is true."""
    real = getattr(target, name)

    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        if when(*args, **kwargs):
            raise Killed
        return out

    monkeypatch.setattr(target, name, wrapped)


def metrics_rows(run_dir):
    """metrics.csv without the wall-time column."""
    from trainlab.runs import read_metrics

    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_metrics(run_dir)]


@pytest.mark.parametrize("phase", ["after best.pt", "after last.pt", "after the metrics row", "during plots"])
def test_a_kill_at_any_phase_resumes_to_the_uninterrupted_run(blobs, runs, quiet, monkeypatch, phase):
    from trainlab.runs import Run
    from trainlab.trainer import Trainer

    (x, _), (xv, _) = blobs
    data = (x, x @ torch.tensor([3.0, -1.0])), (xv, xv @ torch.tensor([3.0, -1.0]))  # val loss falls every epoch
    opts = dict(quiet, epochs=3, batch_size=16, lr=0.01, loss="mse", seed=1, plots=True)
    torch.manual_seed(0)
    full = trainlab.fit(nn.Linear(2, 1), *data, name="full", **opts)
    with monkeypatch.context() as m:
        if phase == "after best.pt":
            kill_after(m, checkpoint, "save", lambda state, path: path.name == "best.pt" and state["epoch"] == 2)
        elif phase == "after last.pt":
            kill_after(m, checkpoint, "save", lambda state, path: path.name == "last.pt" and state["epoch"] == 2)
        elif phase == "after the metrics row":
            kill_after(m, Run, "log_metrics", lambda run, row: row["epoch"] == 2)
        else:
            kill_after(m, Trainer, "plots", lambda trainer: True)
        torch.manual_seed(0)
        with pytest.raises(Killed):
            trainlab.fit(nn.Linear(2, 1), *data, name="cut", **opts)
    last = runs / "cut" / "checkpoints" / "last.pt"
    cfg = trainlab.config.from_dict(checkpoint.load(last)["config"])
    trainlab.fit(nn.Linear(2, 1), *data, config=cfg, resume=last)
    for which in ("last", "best"):
        assert_bitwise_equal(weights(full.run_dir, which), weights(runs / "cut", which))
    assert metrics_rows(full.run_dir) == metrics_rows(runs / "cut")


def test_resume_refuses_to_change_what_the_checkpoint_holds(runs, quiet):
    run = api.train("mnist-cnn", max_steps=3, name="cnn", **quiet).run_dir
    before = (run / "config.yaml").read_text()
    with pytest.raises(trainlab.UserError, match=r"'model' cannot change when resuming \(the run has model='mnist-cnn'\)"):
        api.resume(str(run), model="mnist-mlp")
    assert (run / "config.yaml").read_text() == before
    with pytest.raises(trainlab.UserError, match=r"the checkpoint does not fit model"):
        trainlab.fit(nn.Linear(784, 10), (torch.zeros(8, 784), torch.zeros(8, dtype=torch.int64)),
                     classes=[str(i) for i in range(10)], config=trainlab.config.from_dict(checkpoint.load(run / "checkpoints/last.pt")["config"]),
                     resume=run / "checkpoints/last.pt")


def test_stops_say_how_to_resume_and_a_finished_run_how_to_extend(blobs, runs, quiet, capsys):
    trainlab.fit(nn.Linear(2, 3), *blobs, epochs=1, max_steps=4, name="m", **quiet)
    out = capsys.readouterr().out
    assert "stopped at max_steps=4 (step 4); checkpoint" in out
    assert f"resume with: trainlab train --resume {runs / 'm'}" in out
    last = runs / "m" / "checkpoints" / "last.pt"
    cfg = trainlab.config.from_dict({**checkpoint.load(last)["config"], "max_steps": 0})
    trainlab.fit(nn.Linear(2, 3), *blobs, config=cfg, resume=last)
    before = (runs / "m" / "metrics.csv").read_text()
    capsys.readouterr()
    trainlab.fit(nn.Linear(2, 3), *blobs, config=cfg, resume=last)
    out = capsys.readouterr().out
    assert f"run {runs / 'm'} is already complete (1/1 epochs)" in out and "epochs=N" in out
    assert (runs / "m" / "metrics.csv").read_text() == before


def test_nan_before_any_checkpoint_leaves_only_the_run_record(blobs, runs, quiet):
    with pytest.raises(Diverged, match=r"stopped before any checkpoint was written; the run's record is in .*nan0"):
        trainlab.fit(NaNAfter(2), *blobs, epochs=2, batch_size=16, name="nan0", log_every=1, **quiet)
    assert not list((runs / "nan0" / "checkpoints").glob("*.pt"))
    assert '"state": "diverged"' in (runs / "nan0" / "status.json").read_text()
