"""Run reports: the per-epoch table, the evaluation text (regression errors, macro and per-class
precision/recall/F1) and the plots/ folder, also for a checkpoint kept elsewhere; under faults a full
disk costs the plots, one warning line, never the run."""
import errno
import os
from pathlib import Path

import pytest
import torch
from torch import nn

import trainlab
from conftest import QUIET
from trainlab import api
from trainlab.cli import main
from trainlab.metrics import classification_metrics, regression_metrics
from trainlab.report import format_eval, write_plots


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return api.train("mnist-mlp", epochs=1, out_dir=str(out), **QUIET).run_dir


def test_report_and_predict_edge_inputs(mlp_run, tmp_path, capsys):
    run = mlp_run
    copy = tmp_path / "copy.pt"
    copy.write_bytes((run / "checkpoints" / "last.pt").read_bytes())
    assert main(["report", str(copy)]) == 0
    assert (tmp_path / "copy-report" / "plots" / "confusion.png").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(run), str(empty)]) == 1
    assert "no images found in folder" in capsys.readouterr().err


def test_report_rewrites_plots(mlp_run, capsys):
    assert main(["report", str(mlp_run)]) == 0
    out = capsys.readouterr().out
    assert "train_loss" in out and "confusion matrix" in out
    assert (mlp_run / "plots" / "predictions.png").stat().st_size > 5000


def test_prediction_grid_mixes_right_and_wrong_across_classes():
    """A model that answers one class still shows wrong answers from the other classes."""
    import torch
    from torch import nn

    from trainlab.config import Config
    from trainlab.data import TensorData
    from trainlab.report import prediction_sample
    from trainlab.runtime import build

    class AlwaysZero(nn.Module):
        def forward(self, x):
            return torch.tensor([[1.0, 0.0, 0.0]]).repeat(len(x), 1)

    y = torch.arange(3).repeat(20)  # 60 images of classes 0, 1, 2 in turn
    data = TensorData(torch.zeros(60, 1, 4, 4, dtype=torch.uint8), y)
    rt = build(Config(eval_batch_size=7), AlwaysZero(), data)
    images, true, pred = prediction_sample(rt, rt.eval_batches(data))
    # buckets keep 2 per (class, right?): wrong ones of classes 1 and 2, right ones of class 0
    assert images.shape == (6, 1, 4, 4) and true.tolist() == [1, 2, 0, 1, 2, 0]
    assert (true != pred).sum() == 4 and (true == pred).sum() == 2


BASE = {"checkpoint": "runs/x/checkpoints/last.pt", "epoch": 3, "step": 30, "dataset": "table", "samples": 60}


def test_regression_report_gives_rmse_mae_r2():
    r = {**BASE, "loss": 0.05, **regression_metrics([4.0, 4.0, 4.0, 0.0, 20.0], [1e5, 1e4])}
    text = format_eval(r)
    assert "RMSE: 10000  MAE: 10000  R²: 0.8000" in text and "accuracy" not in text


def test_classification_report_has_macro_and_per_class_columns():
    confusion = [[8, 2], [1, 9]]
    r = {**BASE, "loss": 0.3, "accuracy": 0.85, "per_class": [0.8, 0.9], "confusion": confusion,
         "classes": ["no", "yes"], **classification_metrics(confusion)}
    lines = format_eval(r).splitlines()
    assert "macro precision: 85.35%  recall: 85.00%  F1: 84.96%" in lines
    assert lines[lines.index("per-class accuracy:") + 1:][:3] == [
        "  class  accuracy  precision        F1",
        "  no       80.00%     88.89%    84.21%",
        "  yes      90.00%     81.82%    85.71%"]


EVAL = {"confusion": [[3, 1], [0, 4]], "per_class": [0.75, 1.0]}


def write_metrics(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.csv").write_text("epoch,step,train_loss,val_loss,val_acc,lr,seconds\n"
                                     "1,4,0.9,0.8,0.5,0.1,0.2\n2,8,0.6,0.5,0.9,0.1,0.2\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_while_plotting_is_one_warning(tmp_path, capsys):
    run = tmp_path / "run"
    write_metrics(run)
    (run / "plots").mkdir()
    (run / "plots" / "curves.png").symlink_to("/dev/full")  # every write there fails with ENOSPC
    (run / "plots" / "confusion.png").symlink_to("/dev/full")
    paths = write_plots(run, EVAL, ["a", "b"], None, [], [])
    assert [p.name for p in paths] == ["per_class.png"] and paths[0].stat().st_size > 0
    err = capsys.readouterr().err
    assert err == (f"warning: could not write curves.png, confusion.png in {run / 'plots'}: "
                   "No space left on device (checkpoints are not affected)\n")


def test_training_survives_a_full_disk_at_the_end(tmp_path, blobs, monkeypatch, capsys):
    import matplotlib.figure

    def full(self, path, *a, **k):
        Path(path).write_bytes(b"\x89PNG partial")  # what a full disk leaves: a torn file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    train, val = blobs
    r = trainlab.fit(nn.Linear(2, 3), train, val, epochs=2, out_dir=str(tmp_path), tensorboard=False)
    err = capsys.readouterr().err
    assert "warning: could not write curves.png, confusion.png, per_class.png" in err and "Traceback" not in err
    assert list((r.run_dir / "plots").iterdir()) == []  # no torn PNG left behind
    state = torch.load(r.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and len(r.history) == 2
