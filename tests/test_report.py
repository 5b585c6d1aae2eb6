"""Run reports: the per-epoch table, the evaluation text (regression errors, macro and per-class
precision/recall/F1) and the plots/ folder, also for a checkpoint kept elsewhere."""
import pytest

from conftest import QUIET
from trainlab import api
from trainlab.cli import main
from trainlab.metrics import classification_metrics, regression_metrics
from trainlab.report import format_eval


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
