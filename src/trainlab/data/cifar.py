"""CIFAR-10 in the official python layout (`cifar-10-batches-py/`), read without trusting pickle.

The official batches are pickles of dicts holding a numpy uint8 array and label lists. They are
read with an unpickler that can build only those (dicts, lists, strings, numbers, numpy arrays)
and refuses any other global, so a tampered file cannot run code. Structure is then checked:
10,000 records of 3,072 bytes per batch and labels in 0..9; errors name the file.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
           ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
           ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """One batch as a dict with str keys ('data', 'labels', ...)."""
    try:
        with path.open("rb") as f:
            raw = SafeUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise UserError(f"missing data file: {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise UserError(f"corrupt CIFAR-10 batch {path}: {e}") from e
    if not isinstance(raw, dict):
        raise UserError(f"corrupt CIFAR-10 batch {path}: expected a dict, found {type(raw).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in raw.items()}


def load_batches(folder: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from the named batch files."""
    xs, ys = [], []
    for name in names:
        path = folder / name
        batch = read_batch(path)
        data, labels = batch.get("data"), batch.get("labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            shape = getattr(data, "shape", None)
            raise UserError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), found {shape}")
        if labels is None or len(labels) != len(data):
            raise UserError(f"{path}: {len(data)} images but {0 if labels is None else len(labels)} labels")
        y = torch.tensor(list(labels), dtype=torch.int64)
        if len(y) and (int(y.min()) < 0 or int(y.max()) > 9):
            raise UserError(f"{path}: labels must be in 0..9, found {int(y.min())}..{int(y.max())}")
        xs.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def class_names(folder: Path) -> list[str]:
    meta = folder / "batches.meta"
    if not meta.exists():
        return list(CLASSES)
    names = read_batch(meta).get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise UserError(f"{meta}: 'label_names' must list 10 class names")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
