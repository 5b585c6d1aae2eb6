"""A run's folder: runs/<name>/ with config.yaml, metrics.csv, status.json, TensorBoard events, checkpoints/.

status.json says what the run is doing (running, finished, stopped, diverged, failed), where it
is (epoch, step) and keeps one entry per invocation (start or resume: times, outcome, hardware),
so that `trainlab runs` and the HTML report can tell a finished run from a stopped one.
Only the main process writes here; under torchrun the other ranks get `Run(..., enabled=False)`.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path

import yaml

from .errors import UserError

METRICS = ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
STATUS = "status.json"


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
        raise UserError(f"cannot create a run folder for '{name}' in {base}: {e.strerror or e}") from e
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
            raise UserError(f"cannot write run folder {self.path}: {e.strerror or e}") from e
        print(f"run folder: {self.path}", flush=True)
        remove_stale_tmp(self.checkpoints)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when logging

            self.writer = SummaryWriter(str(self.path))
        self.status = self._start_session(config)

    def _start_session(self, config: dict) -> dict:
        """Mark the run as running and open a session entry; a resume continues the earlier status."""
        previous = read_status(self.path)
        resumed = (self.checkpoints / "last.pt").exists()
        epoch, step = (previous.get("epoch", 0), previous.get("step", 0)) if resumed else (0, 0)
        if resumed and not previous and (self.path / "metrics.csv").exists():  # a run from before status.json
            last = (read_metrics(self.path) or [{}])[-1]
            epoch, step = int(last.get("epoch") or 0), int(last.get("step") or 0)
        self._started = time.monotonic()
        session = {"started": _now(), "resumed": resumed, "from_epoch": epoch, "from_step": step,
                   "hardware": hardware(config)}
        status = {"state": "running", "epoch": epoch, "step": step, "epochs": config.get("epochs"),
                  "pid": os.getpid(), "host": socket.gethostname(), "updated": _now(),
                  "sessions": (previous.get("sessions", []) if resumed else []) + [session]}
        self._write_status(status)
        return status

    def _write_status(self, status: dict) -> None:
        """Small JSON file, replaced atomically so that a reader never sees half of it."""
        tmp = self.path / f".{STATUS}.tmp"
        try:
            tmp.write_text(json.dumps(status, indent=1))
            os.replace(tmp, self.path / STATUS)
        except OSError as e:  # the status is informative; a full disk is reported by the checkpoint write
            print(f"note: cannot write {self.path / STATUS}: {e.strerror or e}")

    def log_metrics(self, row: dict) -> None:
        if not self.enabled:
            return
        path = self.path / "metrics.csv"
        new = not path.exists()
        fields = METRICS if new else _header(path)  # a run resumed from an older version keeps its columns
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: _fmt(row.get(k)) for k in fields})
        if self.writer:
            for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
                if row.get(key) is not None:
                    self.writer.add_scalar(f"epoch/{key}", row[key], row["epoch"])
        self.status.update(epoch=row["epoch"], step=row["step"], updated=_now())
        self._write_status(self.status)

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop metrics.csv rows after `epoch` (a resumed run redoes them), rewriting the file atomically."""
        path = self.path / "metrics.csv"
        if not self.enabled or not path.exists():
            return
        rows = read_metrics(self.path)
        kept = [r for r in rows if int(r["epoch"]) <= epoch]
        if len(kept) == len(rows):
            return
        tmp = path.with_name(".metrics.csv.tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRICS)
            w.writeheader()
            w.writerows({k: r.get(k, "") for k in METRICS} for r in kept)
        os.replace(tmp, path)

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

    def close(self, progress: object = None) -> None:
        """Close TensorBoard and record how this session ended. Called from the trainer's `finally`,
        where sys.exc_info() is the exception that is ending the run (None when it ended normally);
        `progress` (epoch, step) is where it stopped."""
        if self.writer:
            self.writer.close()
        if not self.enabled:
            return
        s = self.status
        if progress is not None:
            s.update(epoch=progress.epoch, step=progress.step)
        error = sys.exc_info()[1]
        s["state"], s["reason"] = _outcome(error, s["epoch"], s.get("epochs") or 0)
        s["updated"] = _now()
        s["sessions"][-1].update(ended=s["updated"], seconds=round(time.monotonic() - self._started, 3),
                                 to_epoch=s["epoch"], to_step=s["step"], outcome=s["state"], reason=s["reason"])
        self._write_status(s)


def _outcome(error: BaseException | None, epoch: int, epochs: int) -> tuple[str, str]:
    """(state, reason) of a session that ends with `error` (or none) at `epoch` of `epochs`."""
    from .errors import Diverged, Interrupted

    if error is None:
        return ("finished", "") if epoch >= epochs else ("stopped", "max_steps")
    if isinstance(error, Diverged):
        return "diverged", str(error)
    if isinstance(error, (Interrupted, KeyboardInterrupt)):
        return "stopped", "interrupted"
    return "failed", f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def hardware(config: dict) -> dict:
    """Where this session trains: device (auto resolved as the trainer does), CPU, GPU, versions."""
    import platform

    import torch

    device = config.get("device", "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    info = {"device": device, "amp": config.get("amp"), "cpu": _cpu_name(), "cpu_cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "host": socket.gethostname()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def read_status(path: Path) -> dict:
    """status.json of a run folder, or {} where there is none (runs from before it existed) or it is unreadable."""
    try:
        status = json.loads((Path(path) / STATUS).read_text())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


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


def _header(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return next(csv.reader(f), None) or METRICS


def read_metrics(path: Path) -> list[dict]:
    with (Path(path) / "metrics.csv").open() as f:
        return list(csv.DictReader(f))
