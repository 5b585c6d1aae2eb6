"""CUDA-graph steps (graphs.py) on a CPU: the fallback rules, and everything GraphStep does besides
the recording itself — static buffers, lr tensors fed each step, warm-up undone, short groups
eager, capture failures — checked against eager training with a stand-in backend that replays
the captured function eagerly. The real capture runs in tests/gpu/test_graphs_cuda.py."""
import pytest
import torch
from torch import nn

import trainlab
from conftest import assert_bitwise_equal, weights
from trainlab import api, graphs
from trainlab.cli import main
from trainlab.errors import UserError

CPU = torch.device("cpu")


class Replayed:
    """Stand-in for CudaGraphs: warm-up runs the step; "capture" keeps the function and each replay
    runs it again, on the static buffers with the lr tensors, as a graph replays its kernels."""

    def __init__(self):
        self.warmups, self.captures, self.replays = 0, 0, 0

    def warm_up(self, fn, times):
        self.warmups += times
        for _ in range(times):
            fn()

    def capture(self, fn):
        self.captures += 1

        def replay():
            self.replays += 1
            return fn()

        return replay


class CaptureFails(Replayed):
    def capture(self, fn):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")


@pytest.fixture
def backend(monkeypatch):
    """Graphs allowed on the CPU with the stand-in backend; the backend made last is returned."""
    made = []

    def make(cls=Replayed):
        monkeypatch.setattr(graphs, "CAPTURE_DEVICES", ("cuda", "cpu"))
        monkeypatch.setattr(graphs, "CudaGraphs", lambda: made.append(cls()) or made[-1])
        return made

    return make


def net() -> nn.Module:
    """Conv, BatchNorm (running stats), dropout (RNG) and a Linear: every kind of state a step changes."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


def data():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 1, 8, 8, generator=g), torch.randint(0, 3, (50,), generator=g)
    return (x[:42], y[:42]), (x[42:], y[42:])  # 42 = 5 batches of 8 + one of 2: the last group is short


# onecycle changes lr every step (the lr tensors must follow), grad_accum=2 gives 3 groups of which
# the last is one short batch (eager), clipping and warm-up run inside the captured step
OPTIONS = dict(epochs=2, batch_size=8, grad_accum=2, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3,
               scheduler="onecycle", warmup_steps=2, clip_grad_norm=1.0, threads=1, log_every=2)


def fit(quiet, name, **options):
    train, val = data()
    return trainlab.fit(net(), train, val, name=name, **quiet, **{**OPTIONS, **options})


@pytest.mark.parametrize("optimizer,ema", [("sgd", 0.0), ("adamw", 0.0), ("sgd", 0.9)])
def test_replayed_steps_equal_eager_steps(quiet, backend, optimizer, ema):
    eager = fit(quiet, "eager", graph="false", optimizer=optimizer, ema=ema)
    made = backend()
    graphed = fit(quiet, "graphed", graph="true", optimizer=optimizer, ema=ema)
    b = made[-1]
    assert (b.captures, b.warmups) == (1, graphs.WARMUP_STEPS)
    assert b.replays == 2 * 2  # two full groups per epoch replayed; the short third ran eagerly
    assert_bitwise_equal(weights(eager.run_dir), weights(graphed.run_dir))  # incl. BN running stats
    if ema:  # the average is updated inside the captured step, and put back after warm-up too
        assert_bitwise_equal(weights(eager.run_dir, "last", "ema"), weights(graphed.run_dir, "last", "ema"))
    assert [r["train_loss"] for r in eager.history] == [r["train_loss"] for r in graphed.history]
    assert [r["lr"] for r in eager.history] == [r["lr"] for r in graphed.history]


def test_resume_with_graphs_is_exact(quiet, backend):
    backend()
    full = fit(quiet, "full", graph="true")
    part = fit(quiet, "part", graph="true", max_steps=4)  # stops in epoch 2, after its first group
    train, val = data()
    resumed = trainlab.fit(net(), train, val, resume=part.run_dir / "checkpoints" / "last.pt",
                           config=trainlab.config.from_dict({**checkpoint_config(part.run_dir), "max_steps": 0}))
    assert_bitwise_equal(weights(full.run_dir), weights(resumed.run_dir))


def checkpoint_config(run_dir):
    from trainlab import checkpoint

    return checkpoint.load(run_dir / "checkpoints" / "last.pt")["config"]


def test_checkpoints_hold_float_lr_and_no_capturable_flag(quiet, backend):
    backend()
    run = fit(quiet, "adam", graph="true", optimizer="adam", epochs=1).run_dir
    from trainlab import checkpoint

    groups = checkpoint.load(run / "checkpoints" / "last.pt")["optimizer"]["param_groups"]
    assert all(isinstance(g["lr"], float) and g["capturable"] is False for g in groups)


def test_a_failed_capture_falls_back_to_eager_steps_exactly(quiet, backend, capsys):
    eager = fit(quiet, "eager", graph="false")
    backend(CaptureFails)
    fallback = fit(quiet, "fallback", graph="auto")
    assert "graph: eager steps (capturing the training step failed: operation not permitted" in capsys.readouterr().out
    assert_bitwise_equal(weights(eager.run_dir), weights(fallback.run_dir))  # the warm-up was undone


def test_a_failed_capture_with_graph_true_is_an_error(quiet, backend):
    backend(CaptureFails)
    with pytest.raises(UserError, match="graph=true, but capturing the training step failed: operation not permitted"):
        fit(quiet, "strict", graph="true")


def test_a_group_of_other_shapes_is_not_replayed(backend):
    model = nn.Linear(2, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, fused=True)
    b = Replayed()

    def step(group):
        opt.zero_grad(set_to_none=True)
        stats = []
        for x, y in group:
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            stats.append((loss.detach(), torch.zeros((), dtype=torch.int64)))
        opt.step()
        return stats

    g = graphs.GraphStep(step, [model], opt, CPU, backend=b)
    full = [(torch.randn(4, 2), torch.tensor([0, 1, 2, 0]))]
    stats = g(full)
    assert len(stats) == 1 and stats[0][0].dtype == torch.float64 and b.replays == 1
    assert g([(torch.randn(3, 2), torch.tensor([0, 1, 2]))]) is None  # the epoch's short batch: eager
    assert g(full + full) is None and b.replays == 1
    opt.param_groups[0]["lr"] = 0.5
    g(full)
    assert g.lr[0].item() == 0.5 and opt.param_groups[0]["lr"] == 0.5  # fed into the tensor, float kept


@pytest.mark.parametrize("device,distributed,scaling,fused,reason", [
    ("cpu", False, False, True, "the device is cpu, not a CUDA GPU"),
    ("cuda", True, False, True, "under torchrun"),
    ("cuda", False, True, True, "amp=fp16 loss scaling"),
    ("cuda", False, False, False, "the optimizer is not torch's fused implementation"),
    ("cuda", False, False, True, ""),
])
def test_why_a_step_cannot_be_captured(device, distributed, scaling, fused, reason):
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, fused=fused or None)
    found = graphs.why_not(torch.device(device), distributed, scaling, opt)
    assert found.startswith(reason) and bool(found) == bool(reason)


def test_decide():
    cuda = torch.device("cuda")
    assert graphs.decide("false", "", cuda) == (False, "")
    assert graphs.decide("auto", "", cuda) == (True, "")
    assert graphs.decide("auto", "the device is cpu, not a CUDA GPU", CPU) == (False, "")  # nothing to expect
    assert graphs.decide("auto", "why", cuda) == (False, "graph: eager steps (why)")
    with pytest.raises(UserError, match="graph=true, but the training step cannot be captured: why"):
        graphs.decide("true", "why", cuda)


def test_graph_key(tmp_path):
    from trainlab.config import convert

    assert convert("graph", True) == "true" and convert("graph", "false") == "false"  # YAML booleans
    with pytest.raises(UserError, match="bad value 'yes' for 'graph': allowed values are auto, true, false"):
        convert("graph", "yes")


def test_cli_graph_true_on_a_cpu_is_one_line(tmp_path, capsys):
    assert main(["train", "mnist-mlp", "graph=true", "device=cpu", f"out_dir={tmp_path}", "tensorboard=false"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "graph=true, but the training step cannot be captured: the device is cpu" in err


def test_api_run_of_a_recipe_with_graphs(quiet, backend):
    """The recipe path (api.train) goes through the same trainer: replayed steps equal eager ones."""
    common = dict(epochs=1, max_steps=6, batch_size=32, threads=1, **quiet)
    eager = api.train("mnist-cnn", name="eager", graph="false", **common)
    backend()
    graphed = api.train("mnist-cnn", name="graphed", graph="true", **common)
    assert_bitwise_equal(weights(eager.run_dir), weights(graphed.run_dir))


def test_a_graph_true_run_resumes_on_a_cpu_with_graph_auto(quiet, backend, tmp_path):
    """graph only changes how steps run, so a resume may change it (e.g. a GPU run resumed on a CPU)."""
    backend()
    part = api.train("mnist-mlp", name="part", graph="true", max_steps=3, threads=1, **quiet)
    graphs.CAPTURE_DEVICES = ("cuda",)  # this machine again: graph=true cannot capture on its CPU
    with pytest.raises(UserError, match="graph=true, but the training step cannot be captured"):
        api.resume(str(part.run_dir), max_steps=2)
    r = api.resume(str(part.run_dir), graph="auto", max_steps=2)
    assert r.history == [] and checkpoint_config(r.run_dir)["graph"] == "auto"


class ReplayFails(Replayed):
    def capture(self, fn):
        def replay():
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

        return replay


def test_an_error_in_a_replay_is_not_taken_for_a_failed_capture(quiet, backend):
    """Only the capture may fall back to eager steps; a later failure is the real error."""
    backend(ReplayFails)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        fit(quiet, "replay", graph="auto")
