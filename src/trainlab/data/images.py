"""The one image decoder: files of any size or mode -> uint8 (C, H, W) tensors.

Training on folders (`folder.py`) and `predict` both use it, so an image is decoded the same way
wherever it comes from: converted to grayscale or RGB, the shorter side resized, centre-cropped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def decode_image(path: Path, channels: int = 3, height: int = 0, width: int = 0) -> torch.Tensor:
    """uint8 (channels, height, width); height=width=0 keeps the file's size. A missing or unreadable
    file is a UserError naming it."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2 import functional as F

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if height and width:
                img = F.center_crop(F.resize(img, min(height, width), antialias=True), [height, width])
            array = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {e}") from None
    array = array[:, :, None] if array.ndim == 2 else array  # (H, W) grayscale -> (H, W, 1)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)
