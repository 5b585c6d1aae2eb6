"""The same runs on a CUDA GPU: exact resume (fp32, fp16 + GradScaler, bf16), NHWC, checkpoints
moving between CPU and GPU, eval and predict on CUDA, and the cifar10-fast recipe for a few steps.

Skipped without CUDA; `benchmarks/gpu_check.sh` runs them on a GPU machine."""
import pytest
import torch

import trainlab
from conftest import assert_bitwise_equal, weights
from trainlab import api, checkpoint

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def stop_and_resume(quiet, runs, **opts):
    """Weights of an uninterrupted run and of the same run stopped at max_steps then resumed."""
    common = dict(epochs=2, log_every=7, **quiet, **opts)
    full = api.train("mnist-cnn", name="full", **common)
    part = api.train("mnist-cnn", name="part", max_steps=100, **common)  # stops mid-epoch 2
    resumed = api.resume(str(part.run_dir), device=opts.get("resume_device", opts.get("device", "cuda")))
    return weights(full.run_dir), weights(resumed.run_dir)


@pytest.mark.parametrize("amp", ["none", "fp16", "bf16"])
def test_resume_on_cuda_is_exact(quiet, runs, amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    full, resumed = stop_and_resume(quiet, runs, device="cuda", amp=amp, deterministic=True)
    assert_bitwise_equal(full, resumed)


def test_fp16_uses_the_grad_scaler_and_checkpoints_it(quiet, runs):
    r = api.train("mnist-cnn", epochs=1, device="cuda", amp="fp16", name="fp16", **quiet)
    state = checkpoint.load(r.run_dir / "checkpoints" / "last.pt")
    assert state["scaler"] and state["scaler"]["scale"] > 0 and r.metrics["accuracy"] > 0.8


def test_channels_last_on_cuda(quiet, runs):
    r = api.train("mnist-cnn", epochs=1, device="cuda", channels_last=True, name="nhwc", **quiet)
    conv = next(m for m in r.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_cuda and conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("train_on,resume_on", [("cuda", "cpu"), ("cpu", "cuda")])
def test_checkpoints_move_between_devices(quiet, runs, train_on, resume_on):
    part = api.train("mnist-cnn", epochs=2, max_steps=100, device=train_on, name="move", **quiet)
    r = api.resume(str(part.run_dir), device=resume_on)
    assert r.history[-1]["epoch"] == 2 and next(r.model.parameters()).device.type == resume_on
    evaluated = api.evaluate_run(str(part.run_dir), device=resume_on)
    assert evaluated["accuracy"] == pytest.approx(r.metrics["accuracy"], abs=1e-6)


def test_predict_on_cuda_takes_inputs_on_any_device(quiet, runs):
    run = api.train("mnist-cnn", epochs=1, device="cuda", name="p", **quiet).run_dir
    predictor = trainlab.load(run, device="cuda")
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    on_cpu = predictor.forward(x)
    on_gpu = predictor.forward(x.cuda())
    assert on_cpu.device.type == "cpu" and torch.equal(on_cpu, on_gpu)
    cpu_predictor = trainlab.load(run, device="cpu")
    assert torch.allclose(cpu_predictor.forward(x), on_cpu, atol=1e-4)


def test_cifar10_fast_recipe_a_few_steps(data_dir, quiet, runs):
    r = api.train("cifar10-fast", max_steps=20, device="cuda", data_dir=str(data_dir), **quiet)
    state = checkpoint.load(r.run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 20 and all(torch.isfinite(t).all() for t in state["model"].values()
                                       if t.is_floating_point())
