"""Checkpoints: one plain dict, written atomically, read back with `weights_only=True`.

The dict holds model, optimizer, scheduler and scaler state, every RNG (python, numpy, torch,
CUDA, the data generator), the loop's progress and the resolved config, so a run resumes exactly.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from .errors import UserError


def rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(as_byte_state(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([as_byte_state(s) for s in state["cuda"]])


def as_byte_state(t: torch.Tensor) -> torch.Tensor:
    """An RNG state as torch's setters require it, a CPU ByteTensor, wherever it was mapped to."""
    return t.detach().to("cpu", torch.uint8).contiguous()


def save(state: dict, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary output file
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError from its zip writer
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise UserError(f"cannot write checkpoint {path}: {reason} (disk full?); the previous file is intact") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def keep_copy(path: Path, copy: Path, keep: int) -> None:
    """Keep `path` also as `copy` (a hard link: no second write) and delete all but the newest
    `keep` files named like `copy` (step-NNNNNNN.pt sort by step)."""
    tmp = copy.with_name(f".{copy.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:  # a file system without hard links
        import shutil

        shutil.copyfile(path, tmp)
    os.replace(tmp, copy)
    stem = copy.stem.split("-")[0]
    kept = sorted(path.parent.glob(f"{stem}-*.pt"))
    for old in kept[:-keep]:
        old.unlink(missing_ok=True)


def resolve(run_or_checkpoint: str, out_dir: str = "runs", which: str = "last") -> Path:
    """A checkpoint file from a checkpoint path, a run folder, or a run name under out_dir."""
    path = Path(run_or_checkpoint)
    candidates = [path] if path.suffix == ".pt" else [
        path / "checkpoints" / f"{which}.pt", Path(out_dir) / path / "checkpoints" / f"{which}.pt"]
    for c in candidates:
        if c.is_file():
            return c
    raise UserError(f"no checkpoint found for '{run_or_checkpoint}' (looked for {', '.join(map(str, candidates))})")


def load(path: Path, map_location: str | torch.device = "cpu") -> dict:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except Exception as e:  # a torn or foreign file: pickle, zip and weights_only errors vary
        raise UserError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UserError(f"{path} is not a trainlab checkpoint (no model/config entries)")
    return state
