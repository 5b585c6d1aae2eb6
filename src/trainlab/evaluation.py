"""Evaluation: mean loss, accuracy, per-class accuracy and the confusion matrix of a model on batches.

The counts stay on the device and are read back once at the end (one host sync per evaluation).
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from .optim import Criterion


@torch.no_grad()
def evaluate(model: nn.Module, batches, criterion: Criterion, num_classes: int,
             autocast: contextlib.AbstractContextManager | None = None) -> dict:
    """{loss, samples} plus, for classification, {accuracy, per_class, confusion}."""
    model.eval()
    autocast = autocast or contextlib.nullcontext()
    device = batches.device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    k = max(num_classes, 2)
    confusion = torch.zeros(k * k, device=device, dtype=torch.int64)  # (true * k + predicted) counts
    n = 0
    for x, y in batches.epoch():
        with autocast:
            out = model(x)
        out = out.float()  # the loss in fp32, as in training
        loss = criterion(out, y)
        loss_sum += loss * len(y) if criterion.reduction == "mean" else loss
        if criterion.is_classification:
            confusion += torch.bincount(y.long() * k + criterion.predict(out).clamp(0, k - 1), minlength=k * k)
        n += len(y)
    result = {"loss": loss_sum.item() / max(n, 1), "samples": n}
    if criterion.is_classification:
        cm = confusion.view(k, k).cpu()
        per_class = (cm.diag().double() / cm.sum(1).clamp(min=1)).tolist()
        result.update(accuracy=cm.diag().sum().item() / max(n, 1), per_class=per_class, confusion=cm.tolist())
    return result
