"""What a training run carries and hands back: `Progress` (the loop's position, checkpointed) and
`FitResult` (what `fit()` returns)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn


@dataclass
class Progress:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: float | None = None  # best val_acc (or lowest val_loss for regression)
    loss_sum: float = 0.0  # current epoch so far: sum of per-sample losses
    samples: int = 0
    correct: int = 0  # current epoch so far: right answers of a classifier on its training batches
    seconds: float = 0.0  # current epoch's training wall time so far
    stale_epochs: int = 0  # early stopping: epochs since the score last improved by more than min_delta
    patience_best: float | None = None  # early stopping: the score those epochs are compared with
    early_stopped: bool = False  # the run ended by early stopping: resuming it has nothing to do


@dataclass
class FitResult:
    model: nn.Module  # the trained model; with ema > 0 its averaged copy, the weights the metrics come from
    run_dir: Path | None
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # the last evaluation (of the validation data)
    test_metrics: dict = field(default_factory=dict)  # the test data at the end, when given apart from validation


def epoch_line(row: dict, epochs: int, samples: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"step {row['step']}", f"train_loss {row['train_loss']:.4f}"]
    if row.get("train_acc") is not None:
        parts.append(f"train_acc {100 * row['train_acc']:.2f}%")
    if row["val_loss"] is not None:
        parts.append(f"val_loss {row['val_loss']:.4f}")
    if row["val_acc"] is not None:
        parts.append(f"val_acc {100 * row['val_acc']:.2f}%")
    parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.2f}s ({samples / max(row['seconds'], 1e-9):.0f} samples/s)"]
    return "  ".join(parts)
