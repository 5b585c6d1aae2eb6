"""Loss-function demonstrations of notes 002/003/004: L1, MSE, cross-entropy (single sample and the
003 batches), NLLLoss after log_softmax, and the numpy softmax + cross-entropy by hand.

torch and numpy are imported inside the functions, so that registering (listing) the examples does
not load them.
"""
from __future__ import annotations

from pathlib import Path

from . import register_example

# Notes 003: three samples whose true classes are 2, 0, 1; Y_PRED1 scores them right, Y_PRED2 not.
Y = [2, 0, 1]
Y_PRED1 = [[0.1, 0.2, 0.9], [1.1, 0.1, 0.2], [0.2, 2.1, 0.1]]
Y_PRED2 = [[0.8, 0.2, 0.3], [0.2, 0.3, 0.5], [0.2, 0.2, 0.5]]


def regression_losses() -> dict[str, float]:
    """Notes 002: inputs [1, 2, 3] against targets [1, 2, 5], shaped like a 1x1x1x3 image."""
    import torch
    from torch import nn

    inputs = torch.tensor([1, 2, 3], dtype=torch.float32).reshape(1, 1, 1, 3)
    targets = torch.tensor([1, 2, 5], dtype=torch.float32).reshape(1, 1, 1, 3)
    # The notes print loss() for the 'sum' case by mistake; this uses loss2 as intended.
    return {
        "l1_mean": nn.L1Loss(reduction="mean")(inputs, targets).item(),
        "l1_sum": nn.L1Loss(reduction="sum")(inputs, targets).item(),
        "mse": nn.MSELoss(reduction="mean")(inputs, targets).item(),
    }


def classification_losses() -> dict[str, float]:
    """Notes 002/003: CrossEntropyLoss on logits, and the same value from NLLLoss(log_softmax)."""
    import torch
    from torch import nn

    ce, nll = nn.CrossEntropyLoss(), nn.NLLLoss()
    logits = torch.tensor([0.1, 0.2, 0.3]).reshape(1, 3)
    target = torch.tensor([1])
    y, pred1, pred2 = torch.tensor(Y), torch.tensor(Y_PRED1), torch.tensor(Y_PRED2)
    return {
        "cross_entropy": ce(logits, target).item(),
        "batch_loss1": ce(pred1, y).item(),
        "batch_loss2": ce(pred2, y).item(),
        # CrossEntropyLoss = log_softmax + NLLLoss: NLLLoss expects log-probabilities.
        "nll_batch_loss1": nll(torch.log_softmax(pred1, dim=1), y).item(),
        "nll_batch_loss2": nll(torch.log_softmax(pred2, dim=1), y).item(),
        "nll_cross_entropy": nll(torch.log_softmax(logits, dim=1), target).item(),
    }


def numpy_cross_entropy() -> float:
    """Notes 003: softmax and cross-entropy written out in numpy for one-hot y = [1, 0, 0]."""
    import numpy as np

    y = np.array([1, 0, 0])
    z = np.array([0.2, 0.1, -0.1])
    y_pred = np.exp(z) / np.exp(z).sum()
    return float((-y * np.log(y_pred)).sum())


@register_example("loss-demo", "L1, MSE, CrossEntropy, NLLLoss after log_softmax, numpy softmax")
def loss_demo(out_dir: Path) -> dict:
    results = {**regression_losses(), **classification_losses(), "numpy_softmax_ce": numpy_cross_entropy()}
    r = results
    print(f"L1Loss mean = {r['l1_mean']:.4f}, sum = {r['l1_sum']:.4f}; MSELoss = {r['mse']:.4f}")
    print(f"CrossEntropyLoss([0.1, 0.2, 0.3], class 1) = {r['cross_entropy']:.4f}")
    print(f"Batch Loss1 = {r['batch_loss1']:.4f}  Batch Loss2 = {r['batch_loss2']:.4f}")
    print(f"NLLLoss(log_softmax): {r['nll_batch_loss1']:.4f}, {r['nll_batch_loss2']:.4f}"
          " (equal to CrossEntropyLoss)")
    print(f"numpy softmax cross-entropy = {r['numpy_softmax_ce']}")
    return results
