"""Evaluation: mean loss, accuracy, per-class accuracy and the confusion matrix of a model on batches.

The counts stay on the device and are read back once at the end (one host sync per evaluation).
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from .metrics import classification_metrics, regression_metrics, regression_sums
from .optim import Criterion


@torch.no_grad()
def evaluate(model: nn.Module, batches, criterion: Criterion, num_classes: int,
             autocast: contextlib.AbstractContextManager | None = None,
             target_scale: list[float] | None = None) -> dict:
    """{loss, samples} plus, for classification, accuracy, per-class accuracy, the confusion matrix
    and macro precision/recall/F1; for regression RMSE/MAE/R² (in target units via `target_scale`
    [mean, std] when the targets were standardised). `model`: what `Runtime.inference_model()` gives
    (averaged weights, test-time augmentation), so that every evaluation runs the same thing."""
    model.eval()
    autocast = autocast or contextlib.nullcontext()
    device = batches.device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    k = max(num_classes, 2)
    confusion = torch.zeros(k * k, device=device, dtype=torch.int64)  # (true * k + predicted) counts
    sums = torch.zeros(5, device=device, dtype=torch.float64)  # metrics.regression_sums
    n = 0
    for x, y in batches.epoch():
        with autocast:
            out = model(x)
        out = out.float()  # the loss in fp32, as in training
        loss = criterion(out, y)
        loss_sum += loss * len(y) if criterion.reduction == "mean" else loss
        if criterion.is_classification:
            confusion += torch.bincount(y.long() * k + criterion.predict(out).clamp(0, k - 1), minlength=k * k)
        else:
            sums += regression_sums(out, y)
        n += len(y)
    result = {"loss": loss_sum.item() / max(n, 1), "samples": n}
    if criterion.is_classification:
        cm = confusion.view(k, k).cpu()
        per_class = (cm.diag().double() / cm.sum(1).clamp(min=1)).tolist()
        result.update(accuracy=cm.diag().sum().item() / max(n, 1), per_class=per_class, confusion=cm.tolist())
        result.update(classification_metrics(cm.tolist()))
    else:
        result.update(regression_metrics(sums.tolist(), target_scale))
    return result
