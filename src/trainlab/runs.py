"""A run's folder: runs/<name>/ with config.yaml, metrics.csv, TensorBoard events, checkpoints/.

Only the main process writes here; under torchrun the other ranks get `Run(..., enabled=False)`.
"""
from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import yaml

from .errors import UserError

METRICS = ["epoch", "step", "train_loss", "val_loss", "val_acc", "lr", "seconds"]


def check_name(name: object, key: str = "name") -> str:
    """A run name is one plain folder name: not empty, '.', '..', absolute or holding a separator,
    so that out_dir/name can never point outside out_dir."""
    text = str(name)
    bad = (not text or text in (".", "..") or "\0" in text or "/" in text
           or (os.altsep and os.altsep in text) or os.sep in text or os.path.isabs(text))
    if bad:
        raise UserError(f"{key}={text!r}: must be a plain folder name (no '/', not '.' or '..')")
    return text


def unique_dir(out_dir: str, name: str) -> Path:
    """Create and return out_dir/name, or out_dir/name-2, -3, ... if that run already exists.

    The folder is made with one mkdir that fails if it exists, so runs started at the same moment
    with the same name each get their own folder (a check-then-create would let them share one).
    """
    check_name(name)
    base = Path(out_dir).expanduser()
    try:
        base.mkdir(parents=True, exist_ok=True)
        for n in range(1, 100_000):
            path = base / (name if n == 1 else f"{name}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise UserError(f"cannot create a run folder for '{name}' in {base}: {e.strerror or e}") from None
    raise UserError(f"cannot create a run folder for '{name}' in {base}: too many runs of that name")


class Run:
    def __init__(self, path: Path, config: dict, *, tensorboard: bool = True, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled
        self.checkpoints = self.path / "checkpoints"
        self.writer = None
        if not enabled:
            return
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            (self.path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        except OSError as e:
            raise UserError(f"cannot write run folder {self.path}: {e.strerror or e}") from None
        print(f"run folder: {self.path}", flush=True)
        remove_stale_tmp(self.checkpoints)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when logging

            self.writer = SummaryWriter(str(self.path))

    def log_metrics(self, row: dict) -> None:
        if not self.enabled:
            return
        path = self.path / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRICS)
            if new:
                w.writeheader()
            w.writerow({k: _fmt(row.get(k)) for k in METRICS})
        if self.writer:
            for key in ("train_loss", "val_loss", "val_acc", "lr"):
                if row.get(key) is not None:
                    self.writer.add_scalar(f"epoch/{key}", row[key], row["epoch"])

    def log_steps(self, tag: str, values: list[tuple[int, float]]) -> None:
        if self.writer:
            for step, value in values:
                self.writer.add_scalar(tag, value, step)

    def log_graph_and_images(self, model, example) -> None:
        """The model graph (traced in eval mode, so no RNG is consumed) and one input batch."""
        if not self.writer:
            return
        if example.dim() == 4:
            images = example.float()
            lo, hi = images.amin(), images.amax()
            self.writer.add_images("inputs", (images - lo) / (hi - lo + 1e-8), 0)
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():  # add_graph traces with torch.jit, which now warns on use
                warnings.simplefilter("ignore")
                self.writer.add_graph(model, example)
        except Exception as e:  # tracing fails for some dynamic models; the run goes on without a graph
            print(f"note: no TensorBoard graph for this model ({type(e).__name__})")
        model.train(was_training)

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def remove_stale_tmp(folder: Path) -> list[Path]:
    """Delete `.last.pt.*.tmp`-style files left by a checkpoint write that was killed; only this run's
    process writes its checkpoints/, so any such file here is an orphan."""
    removed = []
    for tmp in Path(folder).glob(".*.pt.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:  # already gone, or not ours to delete: harmless either way
            pass
    return removed


def _fmt(value: object) -> object:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def read_metrics(path: Path) -> list[dict]:
    with (Path(path) / "metrics.csv").open() as f:
        return list(csv.DictReader(f))
