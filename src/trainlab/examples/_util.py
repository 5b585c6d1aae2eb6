"""Helpers shared by the examples: reproducible randomness and matplotlib figures saved as PNG.

torch, numpy and matplotlib are imported inside the helpers, never at module level: the example
modules import this one when they register, and listing the examples must stay free of them.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block and restore it afterwards, so that running an
    example from a script or a test does not change the caller's random stream."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def pyplot():
    """matplotlib.pyplot on the Agg backend: examples only write PNG files, and Agg works on
    machines without a display (CI, SSH)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Save `fig` as a PNG and close it (open figures would pile up in a long session)."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path


def fmt(t: torch.Tensor, precision: int = 4) -> str:
    """A tensor's values on one line, e.g. [[10., 12.], [13., 3.]], for the concise printouts."""
    import numpy as np

    text = np.array2string(t.detach().cpu().numpy(), precision=precision, separator=", ")
    return " ".join(text.split())
