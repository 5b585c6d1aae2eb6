"""The one image decoder: files of any size or mode -> uint8 (C, H, W) tensors.

Training on folders (`folder.py`) and `predict` both use it, so an image is decoded the same way
wherever it comes from: converted to grayscale or RGB, the shorter side resized, centre-cropped.
Images over MAX_PIXELS (decompression bombs: a 109 KB PNG can claim 30000x30000) are refused from
their header, before any pixel is decoded.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
MAX_PIXELS = 40_000_000  # 40 megapixels (e.g. 8000x5000): 120 MB decoded as RGB; larger files are refused


class ImageTooLarge(UserError):
    """An image whose header claims more than MAX_PIXELS pixels (a possible decompression bomb)."""


@contextlib.contextmanager
def open_image(path: Path):
    """PIL's Image.open with the MAX_PIXELS limit checked on the header, before decoding; PIL's own
    DecompressionBombError/Warning (from 89 Mpx) become ImageTooLarge naming the file."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageTooLarge(f"image {path} is too large ({e}); the limit is {MAX_PIXELS:,} pixels") from e
    with img:
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise ImageTooLarge(f"image {path} is {width}x{height} = {width * height:,} pixels, over the limit "
                                f"of {MAX_PIXELS:,} (a possible decompression bomb); refused")
        yield img


def decode_image(path: Path, channels: int = 3, height: int = 0, width: int = 0) -> torch.Tensor:
    """uint8 (channels, height, width); height=width=0 keeps the file's size. A missing, unreadable or
    too large file is a UserError naming it."""
    from PIL import UnidentifiedImageError

    try:
        with open_image(path) as img:
            from torchvision.transforms.v2 import functional as F  # after the size check: a slow first import

            img = img.convert("L" if channels == 1 else "RGB")
            if height and width:
                img = F.center_crop(F.resize(img, min(height, width), antialias=True), [height, width])
            array = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except ImageTooLarge:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e
    array = array[:, :, None] if array.ndim == 2 else array  # (H, W) grayscale -> (H, W, 1)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)
