"""The moving average of the weights (ema): its arithmetic, its place in training (validation, best.pt,
checkpoints, exact resume) and in everything that loads a run (eval, predict, load, export)."""
import pytest
import torch
from torch import nn

import trainlab
from conftest import assert_bitwise_equal, eval_reproduces_last_row, tiny_run
from trainlab import api, checkpoint
from trainlab.averaging import Averager
from trainlab.config import convert, from_dict
from trainlab.data import TensorData
from trainlab.errors import UserError


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def test_update_is_the_moving_average_of_a_hand_loop_and_buffers_follow():
    model, decay = net(), 0.9
    averager = Averager(model, decay)
    hand = {k: v.clone() for k, v in model.named_parameters()}
    addresses = [t.data_ptr() for t in averager.averaged_params + averager.averaged_buffers]
    g = torch.Generator().manual_seed(1)
    for _ in range(5):  # a "step": new live weights and BatchNorm statistics, then the update
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g))
        model.train()(torch.randn(8, 2, generator=g))
        averager.update()
        for k, p in model.named_parameters():
            hand[k] = decay * hand[k] + (1 - decay) * p.detach()
    averaged = dict(averager.module.named_parameters())
    for k in hand:
        torch.testing.assert_close(averaged[k], hand[k], rtol=1e-6, atol=1e-6)
        assert not torch.allclose(averaged[k], dict(model.named_parameters())[k])
    assert_bitwise_equal(dict(averager.module.named_buffers()), dict(model.named_buffers()))
    assert int(averager.module[1].num_batches_tracked) == 5
    averager.load_state_dict(model.state_dict())  # restores copy into the same tensors
    assert [t.data_ptr() for t in averager.averaged_params + averager.averaged_buffers] == addresses
    assert not any(p.requires_grad for p in averager.module.parameters())


def test_decay_zero_is_the_live_model_and_the_copy_keeps_nhwc():
    conv = nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    averager = Averager(conv, 0.0)
    with torch.no_grad():
        conv.weight.mul_(2)
    averager.update()
    assert torch.equal(averager.module.weight, conv.weight)
    assert averager.module.weight.is_contiguous(memory_format=torch.channels_last)


def fit(blobs, runs, name, **kw):
    opts = dict(epochs=2, batch_size=16, lr=0.1, momentum=0.9, ema=0.8, out_dir=str(runs), name=name,
                threads=1, tensorboard=False, plots=False, quiet=True, log_every=3)
    return trainlab.fit(net(), *blobs, **{**opts, **kw})


def test_resume_after_max_steps_equals_the_uninterrupted_run(blobs, runs):
    full = fit(blobs, runs, "full")
    fit(blobs, runs, "part", max_steps=7)  # mid-epoch 1 (15 steps per epoch)
    last = runs / "part" / "checkpoints" / "last.pt"
    cfg = from_dict({**checkpoint.load(last)["config"], "max_steps": 0})
    resumed = trainlab.fit(net(), *blobs, config=cfg, resume=last)
    for which in ("last", "best"):
        a, b = (checkpoint.load(r / "checkpoints" / f"{which}.pt") for r in (full.run_dir, resumed.run_dir))
        assert_bitwise_equal(a["model"], b["model"])
        assert_bitwise_equal(a["ema"], b["ema"])
    for key in ("train_loss", "val_loss", "val_acc"):
        assert full.history[-1][key] == resumed.history[-1][key]


def test_validation_and_the_result_use_the_averaged_weights(blobs, runs):
    r = fit(blobs, runs, "ema", epochs=1)
    state = checkpoint.load(r.run_dir / "checkpoints" / "last.pt")
    assert_bitwise_equal(r.model.state_dict(), state["ema"])
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])
    start = net().state_dict()
    assert all(not torch.equal(state["ema"][k], start[k]) for k in ("0.weight", "3.bias"))  # it moved
    model = net()
    model.load_state_dict(state["ema"])
    (x, y) = blobs[1]
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model.eval()(x), y).item()
    assert r.metrics["loss"] == pytest.approx(loss, rel=1e-6)


def test_every_optimizer_step_updates_the_average(blobs, runs):
    """A decay near 0 keeps the average at the live weights of the last step."""
    state = checkpoint.load(fit(blobs, runs, "tiny", epochs=1, ema=1e-12).run_dir / "checkpoints" / "last.pt")
    for k in state["model"]:
        torch.testing.assert_close(state["ema"][k], state["model"][k], rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """mnist-cnn for one epoch with ema=0.9 (the recipe validates on the test split, as eval does)."""
    out = tmp_path_factory.mktemp("runs")
    return api.train("mnist-cnn", epochs=1, ema=0.9, name="ema", out_dir=str(out), threads=1,
                     tensorboard=False, plots=False, quiet=True).run_dir


def test_eval_of_an_ema_run_reproduces_its_last_metrics_row(ema_run, capsys):
    eval_reproduces_last_row(ema_run, capsys)


def test_predict_load_and_export_use_the_averaged_weights(ema_run, tmp_path):
    state = checkpoint.load(ema_run / "checkpoints" / "last.pt")
    p = trainlab.load(ema_run, device="cpu")
    assert_bitwise_equal({k: v.contiguous() for k, v in p.model.state_dict().items()}, state["ema"])
    x = trainlab.data.build_dataset("mnist-sample").test.x[:4]
    inputs = p.runtime.eval_batches(TensorData(x, torch.zeros(4, dtype=torch.int64))).sample(4)[0]
    live = api.model_for(p.config, p.classes, tuple(state["input_shape"]))
    live.load_state_dict(state["model"])
    with torch.no_grad():
        torch.testing.assert_close(p.forward(x), p.model(inputs))
        assert not torch.allclose(p.forward(x), live.eval()(inputs), atol=1e-4)
    pytest.importorskip("safetensors")
    from safetensors.torch import load_file

    from trainlab.exporter import export

    done = export(ema_run, "safetensors", out=tmp_path / "m.safetensors")
    assert_bitwise_equal(load_file(str(done.path)), state["ema"])


def test_ema_cannot_change_when_resuming(blobs, runs):
    plain = tiny_run(runs, name="plain", max_steps=1)
    with pytest.raises(UserError, match=r"'ema' cannot change when resuming \(the run has ema=0.0\)"):
        api.resume(str(plain), ema=0.9)
    last = plain / "checkpoints" / "last.pt"
    cfg = from_dict({**checkpoint.load(last)["config"], "max_steps": 0, "ema": 0.9})
    x, y = torch.zeros(64, 2), torch.arange(64) % 3
    with pytest.raises(UserError, match=r"'ema' cannot change when resuming \(the run has ema=0.0\)"):
        trainlab.fit(nn.Linear(2, 3), (x, y), config=cfg, resume=last)
    averaged = tiny_run(runs, name="averaged", max_steps=1, ema=0.5)
    last = averaged / "checkpoints" / "last.pt"
    cfg = from_dict({**checkpoint.load(last)["config"], "max_steps": 0, "ema": 0.0})
    with pytest.raises(UserError, match=r"the run has ema=0.5\); resume with ema=0.5"):
        trainlab.fit(nn.Linear(2, 3), (x, y), config=cfg, resume=last)


def test_bad_ema_values_and_a_damaged_ema_entry(tmp_path):
    for value in ("1", "-0.1", "nan"):
        with pytest.raises(UserError, match=r"for 'ema'"):
            convert("ema", value)
    run = tiny_run(tmp_path, ema=0.5)
    last = run / "checkpoints" / "last.pt"
    state = checkpoint.load(last)
    state["ema"] = {"weight": "not a tensor"}
    torch.save(state, last)
    with pytest.raises(UserError, match=r"bad checkpoint entry 'ema'"):
        trainlab.load(run, model=nn.Linear(2, 3))
