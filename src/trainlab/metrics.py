"""Evaluation metrics as pure functions: regression errors in the target's own units, and
precision/recall/F1 from a confusion matrix.

Regression runs on tables train on a standardised target (data/table.py keeps [mean, std] in the
spec as "target_scale"); `regression_sums` accumulates on the device in those units and
`regression_metrics` turns the sums into RMSE and MAE in original units (times std) and R², which
does not change under the affine scaling. `unscale` turns model outputs back into target units.
"""
from __future__ import annotations

import math

import torch

SUMS = ("n", "squared_error", "absolute_error", "target", "target_squared")  # the order of regression_sums


def regression_sums(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """float64 (5,) on out's device: count, sum of squared and absolute errors, sum of y and of y²
    (over every output element; y is reshaped to out's shape)."""
    out = out.detach().double().reshape(-1)
    y = y.detach().double().reshape(-1)
    if y.numel() != out.numel():  # outputs that are not one value per target: no regression metrics
        return torch.zeros(5, dtype=torch.float64, device=out.device)
    err = out - y
    return torch.stack([torch.ones_like(err).sum(), (err * err).sum(), err.abs().sum(), y.sum(), (y * y).sum()])


def regression_metrics(sums: list[float], scale: list[float] | tuple[float, float] | None = None) -> dict:
    """{"rmse", "mae", "r2"} from summed `regression_sums`; RMSE and MAE in original units when
    `scale` = [mean, std] of a standardised target. R² is None for a constant target."""
    n, sse, sae, sy, syy = sums
    if n <= 0:
        return {}
    std = float(scale[1]) if scale else 1.0
    total = syy - sy * sy / n  # sum of squares about the mean
    r2 = 1.0 - sse / total if total > 1e-12 * syy else None  # rounding leaves ~1e-16 * syy for a constant
    return {"rmse": math.sqrt(sse / n) * std, "mae": sae / n * std, "r2": r2}


def unscale(values: torch.Tensor, scale: list[float] | tuple[float, float] | None) -> torch.Tensor:
    """Model outputs in target units: values * std + mean (unchanged without a scale)."""
    if not scale:
        return values
    mean, std = scale
    return values.double() * std + mean


def classification_metrics(confusion: list[list[int]]) -> dict:
    """Per-class precision, recall, F1 and their unweighted (macro) means from a confusion matrix
    (rows: true class, columns: predicted class). A class never predicted has precision 0; macro
    means run over the classes present in the true labels."""
    k = len(confusion)
    true = [sum(row) for row in confusion]
    predicted = [sum(confusion[i][j] for i in range(k)) for j in range(k)]
    precision = [confusion[j][j] / predicted[j] if predicted[j] else 0.0 for j in range(k)]
    recall = [confusion[j][j] / true[j] if true[j] else 0.0 for j in range(k)]
    f1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(precision, recall)]
    present = [j for j in range(k) if true[j]] or list(range(k))

    def macro(values: list[float]) -> float:
        return sum(values[j] for j in present) / len(present)

    return {"precision": precision, "recall": recall, "f1": f1, "macro_precision": macro(precision),
            "macro_recall": macro(recall), "macro_f1": macro(f1)}


def count_correct(out: torch.Tensor, y: torch.Tensor, criterion) -> torch.Tensor:
    """Correct predictions in one training batch, on the device (no host sync): the hook for train
    accuracy. Sum it over an epoch and divide by the samples seen."""
    return (criterion.predict(out.detach()) == y.reshape(-1).long()).sum()
