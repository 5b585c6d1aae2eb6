"""trainlab export / trainlab.export: TorchScript, ONNX and safetensors files that reproduce the
checkpoint's outputs, written atomically, with a clear error when they do not."""
import json

import pytest
import torch

import trainlab
from trainlab import exporter
from trainlab.cli import main
from trainlab.config import make_config
from trainlab.errors import UserError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch mnist-cnn run on 64 random 28x28 images (a conv net in channels_last)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.arange(64) % 10
    cfg = make_config(None, {"model": "mnist-cnn", "mean": [0.13], "std": [0.31]})
    out = tmp_path_factory.mktemp("runs")
    result = trainlab.fit(trainlab.build_model("mnist-cnn"), (x, y), (x[:32], y[:32]), config=cfg, threads=1,
                          epochs=1, tensorboard=False, plots=False, out_dir=str(out), quiet=True)
    return result.run_dir


def batch(n=3):
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def checkpoint_outputs(run, x):
    with torch.no_grad():
        return trainlab.load(run, device="cpu").model(x)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_reproduces_the_checkpoint(run):
    done = trainlab.export(run, "torchscript")
    assert done.path == run / "export" / "model.pt" and done.max_diff <= done.tolerance
    files = {"trainlab.json": ""}
    loaded = torch.jit.load(str(done.path), _extra_files=files)
    torch.testing.assert_close(loaded(batch()), checkpoint_outputs(run, batch()))  # another batch size too
    meta = json.loads(files["trainlab.json"])
    assert meta["classes"] == [str(i) for i in range(10)] and meta["input_shape"] == [1, 28, 28]
    assert meta["config"]["model"] == "mnist-cnn"
    assert [p.name for p in done.path.parent.iterdir()] == ["model.pt"]  # no temporary file left


def test_safetensors_holds_every_weight(run, tmp_path):
    from safetensors import safe_open

    done = trainlab.export(run, "safetensors", out=tmp_path / "weights.safetensors")
    assert done.path == tmp_path / "weights.safetensors" and done.max_diff == 0.0
    model = trainlab.load(run, device="cpu").model
    with safe_open(str(done.path), "pt") as f:
        assert set(f.keys()) == set(model.state_dict())
        torch.testing.assert_close(f.get_tensor("conv1.weight"), model.state_dict()["conv1.weight"])
        assert json.loads(f.metadata()["trainlab"])["data_shape"] == [1, 28, 28]


@pytest.mark.slow
def test_onnx_runs_in_onnxruntime_with_any_batch_size(run, tmp_path):
    import onnx
    import onnxruntime

    done = trainlab.export(run, "onnx", out=tmp_path / "m.onnx")
    assert done.max_diff is not None and done.max_diff <= done.tolerance
    session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": batch(7).numpy()})[0])
    torch.testing.assert_close(got, checkpoint_outputs(run, batch(7)), atol=1e-4, rtol=1e-4)
    props = {p.key: p.value for p in onnx.load(str(done.path)).metadata_props}
    assert json.loads(props["trainlab"])["classes"][:2] == ["0", "1"]


def test_a_mismatch_fails_and_writes_nothing(run, tmp_path, monkeypatch):
    def bad_writer(model, batches, path, meta):
        path.write_bytes(b"half a model")
        with torch.no_grad():
            return [model(x) + 0.5 for x in batches]

    monkeypatch.setitem(exporter.WRITERS, "torchscript", bad_writer)
    with pytest.raises(UserError, match=r"differs from the checkpoint by up to 0\.5 .*nothing was written"):
        trainlab.export(run, "torchscript", out=tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_the_extra_says_how_to_install(run, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxscript", None)  # as if not installed
    with pytest.raises(UserError, match=r'ONNX export needs the onnx extra: pip install -e "\.\[onnx\]"'):
        trainlab.export(run, "onnx", out=tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_cli_export_prints_the_file_and_replaces_with_a_line(run, tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    assert f"exported torchscript model to {out}; max abs difference" in capsys.readouterr().out
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    assert f"replacing existing {out}" in capsys.readouterr().out
    assert main(["export", str(run), "--format", "torchscript", "--best"]) == 0
    assert (run / "export" / "model-best.pt").exists()


def test_unknown_format_is_a_user_error(run):
    with pytest.raises(UserError, match="unknown export format 'tflite'; choose one of: torchscript, onnx"):
        trainlab.export(run, "tflite")


@pytest.mark.slow
def test_onnx_without_onnxruntime_is_written_with_a_note(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    done = trainlab.export(run, "onnx", out=tmp_path / "m.onnx")
    assert done.max_diff is None and done.path.stat().st_size > 1000
    assert "note: onnxruntime is not installed, so the ONNX file was not checked" in capsys.readouterr().out
    assert "outputs not checked" in done.describe()
