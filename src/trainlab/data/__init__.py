"""Datasets: decoded once into tensors, registered by name.

A dataset builder (`@register_dataset`) returns `Splits`: train and test `TensorData` whose images
are uint8 (N, C, H, W) tensors, or float32 (N, F) feature tables, plus class names. The engine
moves them to the training device once and serves batches from there (see `batches.py`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import UserError

if TYPE_CHECKING:  # torch is imported where tensors are made, so that listing datasets stays fast
    import torch


@dataclass
class TensorData:
    x: torch.Tensor  # (N, C, H, W) uint8 images, or (N, F) float32 features
    y: torch.Tensor  # (N,) int64 class indices, or (N,) float32 targets

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    train: TensorData  # or a torch Dataset of (image, label) when too large to keep in memory
    test: TensorData
    classes: list[str]  # class names; empty for regression
    source: str  # where the data came from, for the run log
    info: dict = field(default_factory=dict)  # fitted preprocessing etc., stored in checkpoints

    @property
    def input_shape(self) -> tuple[int, ...]:
        if isinstance(self.train, TensorData):
            return tuple(self.train.x.shape[1:])
        return tuple(self.train[0][0].shape)


DATASETS: dict[str, Callable[..., Splits]] = {}
DATASET_DOCS: dict[str, str] = {}


def register_dataset(name: str):
    def wrap(fn: Callable[..., Splits]) -> Callable[..., Splits]:
        DATASETS[name] = fn
        DATASET_DOCS[name] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        return fn

    return wrap


def default_data_dir() -> Path:
    return Path(os.environ.get("TRAINLAB_DATA") or Path.home() / ".cache" / "trainlab-data").expanduser()


def build_dataset(name: str, *, data_dir: str = "", data_path: str = "", target: str = "",
                  test_fraction: float = 0.2, seed: int = 0, image_size: int = 0, task: str = "auto",
                  mirror: str = "", download: bool = True, cache: bool = True,
                  max_resident_mb: int = 4096, table_spec: dict | None = None, drop: list[str] | None = None,
                  categorical: list[str] | None = None, numeric: list[str] | None = None) -> Splits:
    """Load dataset `name`; every builder takes the same plain keyword arguments (drop, categorical
    and numeric name table columns whose inferred kind is overridden)."""
    from . import sources  # noqa: F401  (registers the built-in datasets)

    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}'; available: {', '.join(sorted(DATASETS))}")
    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    return DATASETS[name](root=root, data_path=data_path, target=target, test_fraction=test_fraction, seed=seed,
                          image_size=image_size, task=task, mirror=mirror, download=download, cache=cache,
                          max_resident_mb=max_resident_mb, table_spec=table_spec, drop=list(drop or []),
                          categorical=list(categorical or []), numeric=list(numeric or []))


def dataset_names() -> list[str]:
    from . import sources  # noqa: F401

    return sorted(DATASETS)


def stratified_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of indices into (train, held-out) keeping each class's share."""
    import torch

    if not 0.0 < fraction < 1.0:
        raise UserError(f"a split fraction must be between 0 and 1, got {fraction}")
    g = torch.Generator().manual_seed(seed)
    keys = y if y.dtype == torch.int64 else torch.zeros(len(y), dtype=torch.int64)
    train, held = [], []
    for c in torch.unique(keys):
        idx = torch.nonzero(keys == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        held.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values
