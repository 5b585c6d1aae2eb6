"""MNIST-style IDX files (gzip or plain), read with validation: magic number, sizes, labels."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it ends in .gz; a missing or truncated file is a UserError."""
    try:
        if path.suffix != ".gz":
            return path.read_bytes()
        with gzip.open(path) as f:  # GzipFile raises EOFError on a truncated stream
            return f.read()
    except FileNotFoundError:
        raise UserError(f"missing data file: {path}") from None
    except (EOFError, OSError, zlib.error) as e:
        raise UserError(f"corrupt or truncated file {path}: {e}") from e


def read_idx(path: Path, magic: int) -> torch.Tensor:
    """An IDX tensor: images (N, 1, H, W) uint8 for magic 0x803, labels (N,) int64 for 0x801."""
    data = read_bytes(path)
    if len(data) < 8:
        raise UserError(f"{path} is too short to be an IDX file ({len(data)} bytes)")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        kind = "image" if magic == IMAGES_MAGIC else "label"
        raise UserError(f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} for an IDX {kind} file")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise UserError(f"{path}: header says {dims} ({expected} bytes) but the file holds {len(data) - offset}")
    array = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)
    if magic == IMAGES_MAGIC:
        return torch.from_numpy(array.copy()).unsqueeze(1)  # (N, 1, H, W)
    return torch.from_numpy(array.astype(np.int64))


def find(folder: Path, stem: str) -> Path:
    """`stem` or `stem.gz` in folder (torchvision keeps both); the .gz name if neither exists."""
    plain = folder / stem
    return plain if plain.exists() else folder / f"{stem}.gz"


def read_pair(folder: Path, prefix: str, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels `<prefix>-images-idx3-ubyte[.gz]` / `<prefix>-labels-idx1-ubyte[.gz]`."""
    images_path = find(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = find(folder, f"{prefix}-labels-idx1-ubyte")
    x = read_idx(images_path, IMAGES_MAGIC)
    y = read_idx(labels_path, LABELS_MAGIC)
    if len(x) != len(y):
        raise UserError(f"{images_path} has {len(x)} images but {labels_path} has {len(y)} labels")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise UserError(f"{labels_path}: labels must be in 0..{num_classes - 1}, found {int(y.max())}")
    return x, y
