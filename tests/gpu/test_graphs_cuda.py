"""Whole training steps in a real CUDA graph (graph=true) against eager steps (graph=false).

Tolerance: with deterministic kernels the captured step runs the same kernels on the same inputs
as the eager step, so the weights are expected bitwise equal; the assertion allows 1e-6 relative
(the lr is a float32 tensor in the graph where eager passes a double that the kernel rounds to
float32, which should be the same value) and prints whether they were bitwise equal.
Skipped without CUDA; `benchmarks/gpu_check.sh` runs them on a GPU machine."""
import pytest
import torch
from torch import nn

import trainlab
from conftest import assert_bitwise_equal, weights
from trainlab import api
from trainlab.errors import UserError

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

COMMON = dict(device="cuda", deterministic=True, epochs=2, log_every=7)


def assert_close(a: dict, b: dict) -> None:
    bitwise = all(torch.equal(a[k], b[k]) for k in a)
    print(f"captured vs eager: {'bitwise equal' if bitwise else 'equal within 1e-6 relative'}")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7, msg=k)


@pytest.mark.parametrize("recipe,extra", [
    ("mnist-cnn", {}),
    ("cifar10-quick", dict(optimizer="adamw", scheduler="onecycle", grad_accum=2, clip_grad_norm=1.0)),
])
def test_captured_steps_equal_eager_steps(quiet, runs, recipe, extra):
    common = dict(COMMON, epochs=1, max_steps=120, **extra, **quiet)
    eager = api.train(recipe, name="eager", graph="false", **common)
    graphed = api.train(recipe, name="graphed", graph="true", **common)
    assert_close(weights(eager.run_dir), weights(graphed.run_dir))


def test_resume_with_graphs_is_exact(quiet, runs):
    full = api.train("mnist-cnn", name="full", graph="true", **COMMON, **quiet)
    part = api.train("mnist-cnn", name="part", graph="true", max_steps=100, **COMMON, **quiet)
    resumed = api.resume(str(part.run_dir))
    assert_bitwise_equal(weights(full.run_dir), weights(resumed.run_dir))


def test_bf16_with_graphs(quiet, runs):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    r = api.train("mnist-cnn", name="bf16", graph="true", amp="bf16", epochs=1, device="cuda", **quiet)
    assert r.metrics["accuracy"] > 0.8


class SyncsWithTheHost(nn.Module):
    """`.item()` in forward: not capturable."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        out = self.fc(x)
        return out * (1.0 if out.sum().item() > -1e9 else 0.0)


def tensors():
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)


def test_an_uncapturable_model_falls_back_with_one_line(quiet, runs, capsys):
    r = trainlab.fit(SyncsWithTheHost(), tensors(), epochs=2, batch_size=16, device="cuda", graph="auto", **quiet)
    assert "graph: eager steps (capturing the training step failed" in capsys.readouterr().out
    assert r.history[-1]["epoch"] == 2
    with pytest.raises(UserError, match="graph=true, but capturing the training step failed"):
        trainlab.fit(SyncsWithTheHost(), tensors(), epochs=1, batch_size=16, device="cuda", graph="true", **quiet)


def test_fp16_falls_back_saying_why(quiet, runs, capsys):
    api.train("mnist-cnn", name="fp16", amp="fp16", graph="auto", max_steps=5, device="cuda", **quiet)
    assert "graph: eager steps (amp=fp16 loss scaling" in capsys.readouterr().out
