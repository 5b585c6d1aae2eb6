"""The evaluation report text: regression errors, macro and per-class precision/recall/F1."""
from trainlab.metrics import classification_metrics, regression_metrics
from trainlab.report import format_eval

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
