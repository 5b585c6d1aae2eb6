"""Run folders as summaries: `trainlab runs [DIR]`, and the reading shared by compare and the HTML report.

A run folder holds config.yaml (required), metrics.csv (one row per finished epoch) and, for runs
trained since it exists, status.json (see runs.py). Nothing here loads a checkpoint, so listing a
folder of large runs stays fast.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from .errors import UserError
from .report import history_from_csv
from .runs import read_status


@dataclass
class RunInfo:
    path: Path
    config: dict
    history: list[dict]  # metrics.csv rows, numbers parsed
    status: dict  # status.json, {} for older runs
    state: str = ""  # "finished", "stopped at step N", "diverged", "running (epoch e/E)", ...
    metric: str = ""  # "val_acc" (classification), "val_loss" (regression) or "" (no validation)
    best: tuple[float, int] | None = None  # (value, epoch)
    last: float | None = None
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def epochs_done(self) -> int:
        return self.history[-1]["epoch"] if self.history else 0

    @property
    def what(self) -> str:
        recipe, model = self.config.get("recipe") or "-", self.config.get("model") or "-"
        return recipe if recipe == model else f"{recipe}/{model}"


def resolve_run_dir(run: str | Path, out_dir: str = "runs") -> Path:
    """A run folder given as a path, a name under out_dir, or a checkpoint inside one."""
    path = Path(run)
    if path.suffix == ".pt" and path.parent.name == "checkpoints":
        path = path.parent.parent
    for candidate in (path, Path(out_dir) / path):
        if (candidate / "config.yaml").is_file():
            return candidate
    if path.is_dir():
        raise UserError(f"{path} is not a trainlab run folder (it has no config.yaml)")
    raise UserError(f"no run folder '{run}' (looked for {path}/config.yaml and {Path(out_dir) / path}/config.yaml)")


def read_run(run: str | Path) -> RunInfo:
    """Config, per-epoch metrics, status and the derived summary of one run folder."""
    path = resolve_run_dir(run)
    try:
        config = yaml.safe_load((path / "config.yaml").read_text()) or {}
        history = history_from_csv(path)
    except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot read run folder {path}: {str(e).splitlines()[0]}") from e
    if not isinstance(config, dict):
        raise UserError(f"{path / 'config.yaml'} is not a trainlab config (not a mapping)")
    info = RunInfo(path, config, history, read_status(path))
    info.state = state_label(info)
    info.metric, info.best, info.last = validation_summary(history)
    info.wall_seconds = wall_seconds(info)
    return info


def validation_summary(history: list[dict]) -> tuple[str, tuple[float, int] | None, float | None]:
    """(metric, (best, its epoch), last): accuracy where there is one (higher is better), else val loss."""
    for key, better in (("val_acc", max), ("val_loss", min)):
        rows = [r for r in history if r.get(key) is not None]
        if rows:
            best = better(rows, key=lambda r: r[key])
            return key, (best[key], best["epoch"]), rows[-1][key]
    return "", None, None


def _alive(status: dict) -> bool:
    """Whether the process that wrote a 'running' status still exists (checkable on this host only)."""
    if status.get("host") != socket.gethostname():
        return True  # another machine: trust the file
    try:
        os.kill(int(status.get("pid", 0)), 0)
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    return int(status.get("pid", 0)) > 0


def state_label(info: RunInfo) -> str:
    s, epochs = info.status, info.config.get("epochs") or 0
    if not s:  # a run from before status.json: infer from its metrics
        if info.history and info.epochs_done >= epochs:
            return "finished"
        step = info.history[-1]["step"] if info.history else 0
        return f"stopped at step {step}" if info.history else "no epoch finished"
    state, step = s.get("state"), s.get("step", 0)
    if state == "running":
        if not _alive(s):
            return f"stopped at step {step} (process gone)"
        return f"running (epoch {s.get('epoch', 0)}/{s.get('epochs') or epochs})"
    if state == "diverged":  # the step where the loss broke is in status["reason"]
        return "diverged"
    if state == "stopped":
        return f"stopped at step {step}" + (" (interrupted)" if s.get("reason") == "interrupted" else "")
    if state == "failed":
        return f"failed ({s.get('reason', '').split(':')[0]})"
    return str(state)


def _parse_time(text: str | None) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp() if text else None
    except ValueError:
        return None


def wall_seconds(info: RunInfo) -> float:
    """Wall time over all sessions (from status.json), else the training seconds in metrics.csv."""
    total = 0.0
    for session in info.status.get("sessions", []):
        if session.get("seconds") is not None:
            total += session["seconds"]
            continue
        start = _parse_time(session.get("started"))
        end = _parse_time(session.get("ended")) or (time.time() if info.state.startswith("running")
                                                     else _parse_time(info.status.get("updated")))
        if start is not None and end is not None:
            total += max(0.0, end - start)
    return total or sum(r.get("seconds") or 0.0 for r in info.history)


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_metric(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if metric == "val_acc" else f"{value:.4g}"


def list_runs(directory: str | Path = "runs") -> list[RunInfo]:
    """Every run folder directly under `directory` (or `directory` itself if it is a run), by name."""
    root = Path(directory)
    if not root.is_dir():
        raise UserError(f"no runs folder {root} (train something first, or pass the folder: trainlab runs DIR)")
    if (root / "config.yaml").is_file():
        return [read_run(root)]
    infos = []
    for child in sorted(p for p in root.iterdir() if (p / "config.yaml").is_file()):
        try:
            infos.append(read_run(child))
        except UserError as e:  # one damaged folder must not hide the others
            infos.append(RunInfo(child, {}, [], {}, state="unreadable", notes=[str(e)]))
    return infos


def format_runs(infos: list[RunInfo], directory: str | Path = "runs") -> str:
    if not infos:
        return f"no runs in {directory} (a run folder holds config.yaml)"
    header = ["name", "recipe/model", "status", "epochs", "best val", "last val", "wall time"]
    rows = [[i.name, i.what, i.state, f"{i.epochs_done}/{i.config.get('epochs', '?')}",
             f"{format_metric(i.metric, i.best[0])} (ep {i.best[1]})" if i.best else "-",
             format_metric(i.metric, i.last), format_duration(i.wall_seconds)] for i in infos]
    lines = text_table(header, rows)
    metrics = {i.metric for i in infos if i.metric}
    if "val_loss" in metrics:
        lines.append("best/last val: accuracy where the run has one, else validation loss (lower is better)")
    lines += [f"{i.name}: {note}" for i in infos for note in i.notes]
    return "\n".join(lines)


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, a rule under the header."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(f"{str(c):<{w}}" for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(f"{str(c):<{w}}" for c, w in zip(row, widths)).rstrip() for row in rows]
    return lines
