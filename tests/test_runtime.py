"""The runtime built once from the config: training, eval and predict share device, precision,
memory format and criterion, so their numbers agree; checkpoints load on the CPU from any device."""
import pytest
import torch
from torch import nn

import trainlab
from conftest import assert_bitwise_equal, eval_reproduces_last_row, weights
from trainlab import api, checkpoint
from trainlab.config import Config
from trainlab.data import TensorData
from trainlab.errors import UserError
from trainlab.runtime import amp_dtype, build, cpu_has_bf16

CPU = torch.device("cpu")
AMPS = ["auto", "bf16"] if cpu_has_bf16() else ["auto"]


@pytest.mark.parametrize("amp", AMPS)
def test_eval_reproduces_the_last_metrics_row(amp, quiet, runs, capsys):
    """label smoothing, amp and NHWC all apply in `trainlab eval` exactly as in training's validation."""
    api.train("mnist-cnn", epochs=1, label_smoothing=0.1, amp=amp, name="ls", **quiet)
    result = eval_reproduces_last_row(runs / "ls", capsys)
    assert result["loss"] > 0.3  # with label smoothing 0.1 the loss cannot approach 0


def test_amp_choices_on_cpu(monkeypatch):
    assert amp_dtype("none", CPU) is None
    with pytest.raises(UserError, match="amp=fp16 needs a CUDA GPU"):
        amp_dtype("fp16", CPU)
    monkeypatch.setattr("trainlab.runtime.cpu_has_bf16", lambda: False)
    assert amp_dtype("auto", CPU) is None
    with pytest.raises(UserError, match="no native bf16"):
        amp_dtype("bf16", CPU)
    monkeypatch.setattr("trainlab.runtime.cpu_has_bf16", lambda: True)
    assert amp_dtype("auto", CPU) is torch.bfloat16 and amp_dtype("bf16", CPU) is torch.bfloat16


@pytest.mark.parametrize("bf16,batch,expected", [
    (True, 64, None),  # launch-bound small batches: fp32 is faster on a GPU
    (True, 512, torch.bfloat16),
    (False, 512, torch.float16),  # T4-class GPUs: fp16 with the GradScaler
])
def test_amp_auto_on_cuda_depends_on_batch_and_gpu(monkeypatch, bf16, batch, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert amp_dtype("auto", torch.device("cuda"), batch) is expected


def test_build_decides_memory_format_from_data_and_model():
    images = TensorData(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64))
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 2))
    rt = build(Config(channels_last=True), conv, images)
    assert rt.channels_last and rt.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not build(Config(channels_last=True), nn.Linear(64, 2), images).channels_last  # no conv
    assert not build(Config(channels_last=False), nn.Conv2d(1, 2, 3), images).channels_last
    rows = TensorData(torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64))
    assert not build(Config(channels_last=True), nn.Conv2d(1, 2, 3), rows).channels_last


def test_scaler_is_always_there_and_enabled_only_for_fp16():
    rt = build(Config(), nn.Linear(2, 3))
    assert isinstance(rt.scaler, torch.amp.GradScaler) and not rt.scaler.is_enabled()
    assert rt.criterion.fn.label_smoothing == 0.0
    assert build(Config(label_smoothing=0.2), nn.Linear(2, 3)).criterion.fn.label_smoothing == 0.2


def test_checkpoints_are_always_read_onto_the_cpu(blobs, quiet, runs, monkeypatch):
    """Resume, eval and predict read checkpoints with map_location='cpu' (a CUDA map location once
    put the data generator's state on the GPU and resume crashed); the runtime then moves weights."""
    trainlab.fit(nn.Linear(2, 3), *blobs, epochs=1, max_steps=5, name="r", **quiet)
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("map_location"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    last = runs / "r" / "checkpoints" / "last.pt"
    cfg = trainlab.config.from_dict({**checkpoint.load(last)["config"], "max_steps": 0})
    trainlab.fit(nn.Linear(2, 3), *blobs, config=cfg, resume=last)
    assert seen and all(m == "cpu" for m in seen)


def test_rng_states_restore_from_any_tensor_layout():
    """set_rng_state and the data generator take states that arrive as non-contiguous or other
    dtype views (what a foreign map location can produce) by copying them to CPU uint8 first."""
    state = checkpoint.rng_state()
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    state["torch"] = torch.get_rng_state().to(torch.int16)  # a wrong dtype
    checkpoint.set_rng_state(state)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16")
def test_bf16_training_matches_fp32_accuracy_and_resumes_exactly(runs, quiet):
    fp32 = api.train("mnist-cnn", epochs=3, name="fp32", **quiet)
    bf16 = api.train("mnist-cnn", epochs=3, amp="bf16", name="bf16", threads=2, **quiet)
    assert abs(fp32.metrics["accuracy"] - bf16.metrics["accuracy"]) < 0.02
    part = api.train("mnist-cnn", epochs=3, amp="bf16", max_steps=100, name="part", threads=2, **quiet)
    api.resume(str(part.run_dir))
    assert_bitwise_equal(weights(runs / "bf16"), weights(runs / "part"))


@pytest.mark.parametrize("load,expected", [(0.9, 2), (1.8, 1), (6.5, 1), (0.0, 2)])
def test_auto_threads_leave_busy_cores_alone(monkeypatch, load, expected):
    from trainlab.runtime import choose_threads

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr("os.getloadavg", lambda: (load, load, load))
    threads, note = choose_threads(0)
    assert threads == expected and note.startswith(f"threads: {expected} (auto: 2 cores, load average {load:.1f}")
    assert choose_threads(3) == (3, "")  # an explicit choice is kept


def test_the_automatic_thread_count_is_recorded_and_reused_on_resume(blobs, quiet, runs, monkeypatch):
    """Conv and matmul sums differ with the thread count: a resumed run must keep the run's own."""
    monkeypatch.setattr("os.getloadavg", lambda: (0.5, 0.5, 0.5))  # idle: auto takes every core
    part = trainlab.fit(nn.Linear(2, 3), *blobs, epochs=2, max_steps=5, name="auto", **{**quiet, "threads": 0})
    last = part.run_dir / "checkpoints" / "last.pt"
    recorded = checkpoint.load(last)["config"]["threads"]
    assert recorded == torch.get_num_threads() >= 1
    monkeypatch.setattr("os.getloadavg", lambda: (9.0, 9.0, 9.0))  # busy now: auto alone would pick 1
    torch.set_num_threads(1)
    cfg = trainlab.config.from_dict({**checkpoint.load(last)["config"], "max_steps": 0})
    trainlab.fit(nn.Linear(2, 3), *blobs, config=cfg, resume=last)
    assert torch.get_num_threads() == recorded
