"""Metric math: regression errors in target units, R² invariance, precision/recall/F1, train-accuracy hook."""
import pytest
import torch

from trainlab.metrics import classification_metrics, count_correct, regression_metrics, regression_sums, unscale
from trainlab.optim import Criterion


def test_regression_metrics_in_original_units():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(200, generator=g, dtype=torch.float64) * 9e5 + 1e5  # prices 1e5 .. 1e6
    pred = target + torch.randn(200, generator=g, dtype=torch.float64) * 2e4
    mean, std = target.mean().item(), target.std(unbiased=False).item()
    sums = regression_sums(((pred - mean) / std)[:, None], (target - mean) / std)  # standardised, as in training
    m = regression_metrics(sums.tolist(), [mean, std])
    err = pred - target
    assert m["rmse"] == pytest.approx(err.pow(2).mean().sqrt().item(), rel=1e-9)
    assert m["mae"] == pytest.approx(err.abs().mean().item(), rel=1e-9)
    r2 = 1 - err.pow(2).sum() / (target - target.mean()).pow(2).sum()
    assert m["r2"] == pytest.approx(r2.item(), rel=1e-9) and m["r2"] > 0.9
    raw = regression_metrics(regression_sums(pred, target).tolist())  # unscaled: the same numbers
    assert raw["rmse"] == pytest.approx(m["rmse"], rel=1e-6) and raw["r2"] == pytest.approx(m["r2"], rel=1e-6)
    assert regression_metrics([3.0, 0.0, 0.0, 6.0, 12.0])["r2"] is None  # constant target: R² undefined
    assert unscale(torch.tensor([0.0, 1.0]), [5.0, 2.0]).tolist() == [5.0, 7.0]
    assert unscale(torch.tensor([1.0]), None).tolist() == [1.0]


def test_classification_metrics_from_confusion():
    confusion = [[5, 1, 0], [2, 2, 0], [0, 0, 0]]  # class 2 never occurs nor is predicted
    m = classification_metrics(confusion)
    assert m["precision"] == pytest.approx([5 / 7, 2 / 3, 0.0]) and m["recall"] == pytest.approx([5 / 6, 0.5, 0.0])
    f1 = [2 * p * r / (p + r) for p, r in zip(m["precision"][:2], m["recall"][:2])]
    assert m["f1"][:2] == pytest.approx(f1)
    assert m["macro_recall"] == pytest.approx((5 / 6 + 0.5) / 2)  # over the classes present
    assert m["macro_f1"] == pytest.approx(sum(f1) / 2)


def test_count_correct_hook():
    out = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert count_correct(out, torch.tensor([0, 1, 1]), Criterion("cross_entropy")).item() == 2
    assert count_correct(torch.tensor([[0.9], [0.2]]), torch.tensor([1, 1]), Criterion("bce")).item() == 1
