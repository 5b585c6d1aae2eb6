"""Regressions for problems found in review: user errors that used to end in a traceback, and
results that used to be wrong (table eval preprocessing, max_steps
on resume, deterministic eval transforms)."""
import os

import pytest
import torch
from torch import nn

import trainlab
from trainlab import api, checkpoint
from trainlab.config import make_config
from trainlab.cli import main
from trainlab.data import TensorData
from trainlab.data.plan import plan_batches
from trainlab.data.transforms import per_sample_pipeline, parse
from trainlab.errors import UserError


@pytest.mark.parametrize("args,message", [
    (["loss=bce", "epochs=1"], "loss 'bce' does not fit the model's output shape (10,)"),
    (["threads=-1"], "bad value -1 for 'threads': must be 0 or more"),
    (["label_smoothing=2"], "must be in [0, 1)"),
    (["betas=[0.9]", "optimizer=adam"], "two numbers in [0, 1)"),
    (["image_size=-3"], "must be 0 or more"),
    (['transforms=["RandomCrop(32, padding=4)"]', "epochs=1"], "does not accept inputs of shape (1, 32, 32)"),
])
def test_more_user_errors_are_one_line(args, message, tmp_path, capsys):
    assert main(["train", *args, f"out_dir={tmp_path}", "tensorboard=false"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_folder_named_like_a_recipe_does_not_shadow_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("mnist-mlp")
    assert make_config("mnist-mlp").model == "mnist-mlp"


def test_losses_that_do_not_fit_the_targets(blobs, runs, data_dir):
    (x, _), val = blobs
    with pytest.raises(UserError, match="needs integer class labels"):
        trainlab.fit(nn.Linear(2, 3), (x, x[:, 0]), None, out_dir=str(runs))
    with pytest.raises(UserError, match="loss=mse is for regression targets"):
        api.train("table", data_path=str(data_dir / "diabetes.csv.gz"), loss="mse", out_dir=str(runs))


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save({"model": {}, "config": {}, "epoch": 0, "step": 0, "v": 1}, path)

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 768 vs 662")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match=r"cannot write checkpoint .*last.pt: .*the previous file is intact"):
        checkpoint.save({"model": {}, "config": {}, "v": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path)["v"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_max_steps_counts_from_the_resumed_step(blobs, runs):
    common = dict(epochs=4, batch_size=16, out_dir=str(runs), name="r", tensorboard=False, plots=False)
    trainlab.fit(nn.Linear(2, 3), *blobs, max_steps=5, **common)
    last = runs / "r" / "checkpoints" / "last.pt"
    cfg = trainlab.config.from_dict({**checkpoint.load(last)["config"], "max_steps": 2})
    trainlab.fit(nn.Linear(2, 3), *blobs, config=cfg, resume=last)
    assert checkpoint.load(last)["step"] == 7


def test_eval_uses_the_checkpoint_table_preprocessing(tmp_path):
    csv = tmp_path / "houses.csv"
    rows = [f"{50 + i},{(50 + i) * 3 + (i % 7)}" for i in range(120)]
    csv.write_text("area,price\n" + "\n".join(rows) + "\n")
    run = api.train("table", data_path=str(csv), target="price", epochs=30, out_dir=str(tmp_path / "runs"),
                    tensorboard=False, plots=False).run_dir
    same = api.evaluate_run(str(run))
    scaled = tmp_path / "houses10.csv"  # a different file: refitting would hide the shift, the stored spec shows it
    scaled.write_text("area,price\n" + "\n".join(f"{int(r.split(',')[0]) * 10},{r.split(',')[1]}" for r in rows) + "\n")
    shifted = api.evaluate_run(str(run), data_path=str(scaled))
    assert shifted["loss"] > 100 * same["loss"]


def test_deterministic_eval_transforms_match_per_sample(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(6) % 2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    _, val = plan_batches(data, data, transforms=["Grayscale(3)"], mean=[0.5] * 3, std=[0.5] * 3, batch_size=6,
                          eval_batch_size=6, seed=0, drop_last=False, channels_last=False, workers=0, model=model,
                          device=torch.device("cpu"))
    xb, _ = next(iter(val.epoch()))
    ref = torch.stack([per_sample_pipeline([parse("Grayscale(3)")], [0.5] * 3, [0.5] * 3)(img) for img in data.x])
    assert torch.allclose(xb, ref, atol=1e-6) and torch.allclose(xb[:, 0], xb[:, 1])


def test_report_and_predict_edge_inputs(tmp_path, capsys):
    run = api.train("mnist-mlp", epochs=1, out_dir=str(tmp_path / "runs"), tensorboard=False, plots=False).run_dir
    copy = tmp_path / "copy.pt"
    copy.write_bytes((run / "checkpoints" / "last.pt").read_bytes())
    assert main(["report", str(copy)]) == 0
    assert (tmp_path / "copy-report" / "plots" / "confusion.png").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(run), str(empty)]) == 1
    assert "no images found in folder" in capsys.readouterr().err
