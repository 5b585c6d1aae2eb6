"""The decoded-tensor cache: a dataset decoded once is kept on disk as a uint8 tensor file.

The key hashes every source file's path, size and modification time plus the decode settings,
so a changed source or setting builds a new entry. Entries are written atomically and read with
`weights_only=True`; an entry that cannot be read is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Callable

import torch

from ..errors import UserError
from . import Splits, TensorData

VERSION = 1


def cache_dir() -> Path:
    return Path(os.environ.get("TRAINLAB_CACHE") or Path.home() / ".cache" / "trainlab" / "tensors").expanduser()


def key(name: str, sources: list[Path], settings: dict) -> str:
    h = hashlib.sha256(json.dumps({"name": name, "settings": settings, "version": VERSION}, sort_keys=True).encode())
    for path in sorted(sources):
        try:
            st = path.stat()
        except OSError as e:
            raise UserError(f"missing data file: {path} ({e.strerror or e})") from e
        h.update(f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def cached(name: str, sources: list[Path], settings: dict, build: Callable[[], Splits], enabled: bool = True) -> Splits:
    """build() once; later calls with unchanged sources and settings load the stored tensors."""
    if not enabled:
        return build()
    path = cache_dir() / f"{name}-{key(name, sources, settings)}.pt"
    if path.exists():
        try:
            s = torch.load(path, weights_only=True)
            return Splits(TensorData(s["train_x"], s["train_y"]), TensorData(s["test_x"], s["test_y"]),
                          s["classes"], s["source"], s["info"])
        except Exception as e:  # torn or tampered entry: rebuild it
            print(f"warning: rebuilding unreadable cache entry {path} ({type(e).__name__})", file=sys.stderr)
    splits = build()
    state = {"train_x": splits.train.x, "train_y": splits.train.y, "test_x": splits.test.x,
             "test_y": splits.test.y, "classes": splits.classes, "source": splits.source, "info": splits.info}
    try:
        from ..checkpoint import save

        save(state, path)
    except Exception as e:  # a read-only or full cache folder only costs speed
        print(f"warning: could not write cache entry {path}: {e}", file=sys.stderr)
    return splits
