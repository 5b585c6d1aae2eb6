"""Per-channel mean and standard deviation of a dataset's train split (for Normalize)."""
from __future__ import annotations

import torch

from . import TensorData


def channel_stats(data: TensorData, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Mean and (unbiased) std per channel of uint8 images scaled to [0, 1], or per feature of a table.

    Sums are accumulated in float64 chunk by chunk, so 50,000 CIFAR images need little memory.
    """
    x = data.x
    image = x.dtype == torch.uint8
    dims = (0, 2, 3) if x.dim() == 4 else (0,)
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].double()
        if image:
            part = part / 255.0
        total += part.sum(dims)
        squares += (part * part).sum(dims)
    n = x.numel() // x.shape[1]
    mean = total / n
    var = (squares - n * mean * mean) / (n - 1)
    return mean.tolist(), var.clamp(min=0).sqrt().tolist()
