"""Engine helpers for the trainer: evaluation, devices and amp, seeding, data checks, Ctrl-C handling.

`evaluate()` runs a model over batches with one host sync at the end. The training loop itself
and `fit()` are in trainer.py.
"""
from __future__ import annotations

import contextlib
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import TensorData
from .data.batches import TensorBatches
from .errors import UserError
from .metrics import classification_metrics, regression_metrics, regression_sums
from .optim import Criterion


@dataclass
class Progress:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: float | None = None  # best val_acc (or lowest val_loss for regression)
    loss_sum: float = 0.0  # current epoch so far: sum of per-sample losses
    samples: int = 0
    seconds: float = 0.0  # current epoch's training wall time so far


@dataclass
class FitResult:
    model: nn.Module
    run_dir: Path | None
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # the last evaluation


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def dataset_classes(data) -> list[str] | None:
    """Class names a dataset declares (`.classes`, also inside a ConcatDataset), else None."""
    if isinstance(data, torch.utils.data.ConcatDataset):
        return dataset_classes(data.datasets[0])
    classes = getattr(data, "classes", None)
    return list(classes) if classes else None


def dataset_labels(data) -> torch.Tensor:
    if isinstance(data, TensorData):
        return data.y
    return torch.as_tensor([int(data[i][1]) for i in range(len(data))])


def cpu_has_bf16() -> bool:
    """oneDNN's own check for native bf16 (avx512_bf16 or AMX); without it bf16 is far slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for config `amp` on `device`, or None for fp32; a UserError where unsupported."""
    if amp == "none":
        return None
    cuda = device.type == "cuda"
    bf16 = torch.cuda.is_bf16_supported() if cuda else cpu_has_bf16()
    if amp == "auto":
        return torch.bfloat16 if bf16 else None
    if amp == "fp16" and not cuda:
        raise UserError("amp=fp16 needs a CUDA GPU; on CPU use amp=bf16 (where supported) or amp=none")
    if amp == "bf16" and not bf16:
        raise UserError(f"amp=bf16: this {'GPU' if cuda else 'CPU'} has no native bf16 (avx512_bf16/AMX), where it "
                        "is slower than fp32; use amp=none or amp=auto")
    return torch.float16 if amp == "fp16" else torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA GPU is available; use device=auto or device=cpu")
    return torch.device(name)


def as_tensor_data(data: object, what: str):
    """TensorData for tensors (the fast path); any other torch Dataset is passed through."""
    if isinstance(data, TensorData):
        return data
    if isinstance(data, torch.utils.data.TensorDataset):
        return TensorData(*data.tensors[:2])
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        if len(data[0]) != len(data[1]):
            raise UserError(f"{what}: x has {len(data[0])} rows but y has {len(data[1])}")
        return TensorData(data[0], data[1])
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        return data
    raise UserError(f"{what}: expected an (x, y) pair of tensors, TensorData or a torch Dataset of (input, label), got {type(data).__name__}")


class StopFlag:
    """Ctrl-C asks the loop to stop at the next optimizer step; a second Ctrl-C aborts at once."""

    def __init__(self):
        self.requested, self._previous = False, None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step to save a checkpoint (Ctrl-C again to abort without one)", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@torch.no_grad()
def evaluate(model: nn.Module, batches: TensorBatches, criterion: Criterion, num_classes: int,
             amp: torch.dtype | None = None, target_scale: list[float] | None = None) -> dict:
    """Mean loss, accuracy, per-class accuracy, confusion matrix and macro precision/recall/F1, or
    RMSE/MAE/R² (in target units via `target_scale` [mean, std]); one host sync at the end."""
    model.eval()
    device = batches.device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    k = max(num_classes, 2)
    confusion = torch.zeros(k * k, device=device, dtype=torch.int64)
    sums = torch.zeros(5, device=device, dtype=torch.float64)  # metrics.regression_sums
    n = 0
    for x, y in batches.epoch():
        with autocast(device, amp):
            out = model(x)
        out = out.float()
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
