"""`trainlab compare RUN RUN... [--html OUT]`: runs side by side, in the terminal and as one HTML page.

Shows the config keys whose values differ (only those), a final-metrics table and the validation
metric per epoch; the HTML page overlays every run's curves. Reads config.yaml, metrics.csv and
status.json only: no checkpoint is loaded, so comparing large runs is instant.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from . import htmlkit as h
from .errors import UserError
from .runlist import RunInfo, format_duration, format_metric, read_run, text_table

IGNORED_KEYS = {"name"}  # differs between any two runs and already heads each column
ABSENT = "(absent)"
MAX_EPOCH_LINES = 30  # terminal: longer runs show every k-th epoch


def load_runs(runs: list[str | Path]) -> list[RunInfo]:
    if len(runs) < 2:
        raise UserError(f"compare needs at least two runs, got {len(runs)}: trainlab compare RUN RUN...")
    return [read_run(r) for r in runs]


def labels(infos: list[RunInfo]) -> list[str]:
    """Run names, or their paths where two runs share a name (runs/a and old/a)."""
    names = [i.name for i in infos]
    return [str(i.path) if names.count(i.name) > 1 else i.name for i in infos]


def config_diff(infos: list[RunInfo]) -> list[tuple[str, list[str]]]:
    """[(key, value in each run)] for the keys whose values are not all equal, in config order."""
    keys: list[str] = []
    for info in infos:
        keys += [k for k in info.config if k not in keys and k not in IGNORED_KEYS]
    diff = []
    for key in keys:
        values = [_show(i.config[key]) if key in i.config else ABSENT for i in infos]
        if len(set(values)) > 1:
            diff.append((key, values))
    return diff


def _show(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return "none" if value is None or value == "" else str(value)


FINAL_HEADER = ["run", "recipe/model", "status", "epochs", "best val", "last val acc", "last val loss",
                "last train loss", "wall time"]


def final_rows(infos: list[RunInfo]) -> list[list[str]]:
    rows = []
    for name, i in zip(labels(infos), infos):
        last = i.history[-1] if i.history else {}
        best = format_metric(i.metric, i.best[0]) + f" (epoch {i.best[1]})" if i.best else "-"
        rows.append([name, i.what, i.state, f"{i.epochs_done}/{i.config.get('epochs', '?')}", best,
                     format_metric("val_acc", last.get("val_acc")), _loss(last.get("val_loss")),
                     _loss(last.get("train_loss")), format_duration(i.wall_seconds)])
    return rows


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def epoch_rows(infos: list[RunInfo], limit: int = MAX_EPOCH_LINES) -> tuple[str, list[list[str]]]:
    """(metric name, [epoch, value per run]): validation accuracy if any run has it, else val loss."""
    metric = "val_acc" if any(i.metric == "val_acc" for i in infos) else "val_loss"
    epochs = sorted({r["epoch"] for i in infos for r in i.history})
    every = -(-len(epochs) // limit) if epochs else 1
    shown = [e for k, e in enumerate(epochs) if k % every == 0 or k == len(epochs) - 1]
    by_run = [{r["epoch"]: r.get(metric) for r in i.history} for i in infos]
    rows = [[str(e)] + [format_metric(metric, values.get(e)) for values in by_run] for e in shown]
    return metric, rows


def format_compare(infos: list[RunInfo]) -> str:
    names = labels(infos)
    diff = config_diff(infos)
    lines = ["config (only the keys that differ):"]
    lines += ["  " + line for line in text_table(["key", *names], [[k, *v] for k, v in diff])] if diff \
        else ["  the configs are identical"]
    lines += ["", "final metrics:"] + ["  " + line for line in text_table(FINAL_HEADER, final_rows(infos))]
    metric, rows = epoch_rows(infos)
    if rows:
        what = "validation accuracy" if metric == "val_acc" else "validation loss"
        lines += ["", f"{what} per epoch:"] + ["  " + line for line in text_table(["epoch", *names], rows)]
    return "\n".join(lines)


def render(infos: list[RunInfo]) -> str:
    from .html_report import curves

    names = labels(infos)
    title = "trainlab compare: " + " vs ".join(names)
    diff = config_diff(infos)
    diff_html = (h.table(["key", *names], [[k, *v] for k, v in diff], left=len(names) + 1) if diff
                 else '<p class="note">the configs are identical (apart from the name)</p>')
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="lead">{escape(" · ".join(f"{n}: {i.path}" for n, i in zip(names, infos)))}</p>',
            h.section("Curves", curves([], runs=[(n, i.history) for n, i in zip(names, infos)]), anchor="curves"),
            h.section("Config differences", '<p class="note">only the keys whose values differ</p>', diff_html,
                      anchor="config"),
            h.section("Final metrics", h.table(FINAL_HEADER, final_rows(infos), left=4), anchor="final")]
    return h.page(title, body)


def write_html(infos: list[RunInfo], out: str | Path) -> Path:
    path = Path(out)
    if path.is_dir():
        path = path / "compare.html"
    try:
        path.write_text(render(infos), encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from e
    return path


def compare_runs(runs: list[str | Path], html: str | Path | None = None) -> dict:
    """Runs side by side: {"runs", "config_diff" {key: values}, "final" [row dicts], "html" path or None}."""
    infos = load_runs(list(runs))
    return {"runs": labels(infos), "config_diff": dict(config_diff(infos)),
            "final": [dict(zip(FINAL_HEADER, row)) for row in final_rows(infos)],
            "html": write_html(infos, html) if html else None}
