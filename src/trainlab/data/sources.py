"""The built-in datasets: bundled MNIST sample, MNIST in torchvision's layout, CSV tables."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from . import Splits, TensorData, register_dataset, stratified_split
from .idx import read_bytes, read_pair

DIGITS = [str(i) for i in range(10)]


@register_dataset("mnist-sample")
def mnist_sample(**_) -> Splits:
    """Bundled MNIST: 5,000 training images (500 per class) and the official 10,000 test images."""
    folder = Path(str(resources.files("trainlab") / "assets" / "mnist-sample"))
    train, test = read_pair(folder, "train5k"), read_pair(folder, "t10k")
    return Splits(TensorData(*train), TensorData(*test), DIGITS, f"bundled {folder}")


@register_dataset("mnist")
def mnist(root: Path, **_) -> Splits:
    """Official MNIST in torchvision's layout: <data_dir>/MNIST/raw/*-ubyte[.gz]."""
    folder = root / "MNIST" / "raw"
    train, test = read_pair(folder, "train"), read_pair(folder, "t10k")
    return Splits(TensorData(*train), TensorData(*test), DIGITS, str(folder))


def read_numeric_csv(path: Path) -> np.ndarray:
    """A headerless numeric CSV (.csv or .csv.gz) as a float32 (rows, columns) array."""
    text = read_bytes(path).decode("utf-8", errors="replace")
    rows = [line for line in text.splitlines() if line.strip()]
    try:
        table = np.array([[float(v) for v in line.split(",")] for line in rows], dtype=np.float32)
    except ValueError as e:
        raise UserError(f"{path}: not a numeric CSV table ({e})") from None
    if table.ndim != 2 or table.shape[1] < 2:
        raise UserError(f"{path}: expected rows of at least 2 comma-separated numbers")
    return table


@register_dataset("diabetes")
def diabetes(root: Path, val_fraction: float = 0.2, seed: int = 0, **_) -> Splits:
    """Notes 003 diabetes table: 759 rows, 8 scaled features, 0/1 label (<data_dir>/diabetes.csv.gz)."""
    table = torch.from_numpy(read_numeric_csv(root / "diabetes.csv.gz"))
    x, y = table[:, :-1], table[:, -1]
    labels = y.long()
    if not torch.equal(labels.float(), y) or int(labels.min()) < 0 or int(labels.max()) > 1:
        raise UserError(f"{root / 'diabetes.csv.gz'}: the last column must be a 0/1 label")
    tr, te = stratified_split(labels, val_fraction, seed)
    return Splits(TensorData(x[tr], labels[tr]), TensorData(x[te], labels[te]), ["0", "1"], str(root / "diabetes.csv.gz"))
