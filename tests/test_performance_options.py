"""The speed levers: bf16/fp16 autocast (with CPU capability detection) and the cifar10-fast recipe."""
import pytest
import torch

import trainlab
from trainlab import api
from trainlab.engine import amp_dtype, cpu_has_bf16
from trainlab.errors import UserError

CPU = torch.device("cpu")


def test_amp_choices_on_cpu(monkeypatch):
    assert amp_dtype("none", CPU) is None
    with pytest.raises(UserError, match="amp=fp16 needs a CUDA GPU"):
        amp_dtype("fp16", CPU)
    monkeypatch.setattr("trainlab.engine.cpu_has_bf16", lambda: False)
    assert amp_dtype("auto", CPU) is None
    with pytest.raises(UserError, match="no native bf16"):
        amp_dtype("bf16", CPU)
    monkeypatch.setattr("trainlab.engine.cpu_has_bf16", lambda: True)
    assert amp_dtype("auto", CPU) is torch.bfloat16 and amp_dtype("bf16", CPU) is torch.bfloat16


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16")
def test_bf16_training_matches_fp32_accuracy_and_resumes_exactly(runs):
    fp32 = api.train("mnist-cnn", epochs=3, out_dir=str(runs), name="fp32", tensorboard=False, plots=False)
    bf16 = api.train("mnist-cnn", epochs=3, amp="bf16", out_dir=str(runs), name="bf16", tensorboard=False, plots=False)
    assert abs(fp32.metrics["accuracy"] - bf16.metrics["accuracy"]) < 0.02
    part = api.train("mnist-cnn", epochs=3, amp="bf16", max_steps=100, out_dir=str(runs), name="part",
                     tensorboard=False, plots=False)
    api.resume(str(part.run_dir))
    a = trainlab.checkpoint.load(runs / "bf16/checkpoints/last.pt")["model"]
    b = trainlab.checkpoint.load(runs / "part/checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cifar10_fast_runs_a_few_steps_on_cpu(data_dir, runs):
    """The GPU recipe runs on CPU too (slowly): a few steps, checkpoint written, loss finite."""
    r = api.train("cifar10-fast", max_steps=3, batch_size=64, data_dir=str(data_dir), out_dir=str(runs),
                  tensorboard=False)
    state = trainlab.checkpoint.load(r.run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 3 and state["config"]["label_smoothing"] == 0.2
    assert state["config"]["scheduler"] == "onecycle" and state["config"]["amp"] == "auto"


def test_summary_of_cifar10_fast(capsys):
    from trainlab.cli import main

    assert main(["summary", "cifar10-fast"]) == 0
    out = capsys.readouterr().out
    assert "(1, 256, 4, 4)" in out and "(1, 10)" in out
