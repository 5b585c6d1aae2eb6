"""`trainlab report RUN --html`: one self-contained HTML page per run, written to RUN/report.html.

The page shows the headline numbers, loss/accuracy/lr curves (SVG), the metrics of every epoch,
the evaluated checkpoint's per-class metrics and confusion matrix with class names, the
worst-predicted test examples (images or table rows), the config, timing and hardware, and the
resume history. A run whose model cannot be rebuilt (a custom model from `trainlab.fit`) gets the
checkpoint's own last evaluation instead of a fresh one, and says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from . import htmlkit as h
from .errors import UserError
from .runlist import RunInfo, format_duration, format_metric, read_run
from .svgchart import line_chart

if TYPE_CHECKING:  # worst.py imports torch; compare.py uses this module's charts without it
    from .worst import Example

MAX_EPOCH_ROWS = 200  # longer runs show every k-th epoch (and the last) in the table
HARDWARE_KEYS = ["device", "gpu", "amp", "cpu", "cpu_cores", "threads", "torch", "python", "platform", "host"]


@dataclass
class Evaluation:
    result: dict = field(default_factory=dict)  # loss, accuracy, per_class, confusion, classes, checkpoint...
    note: str = ""  # where the numbers come from, or why there are none
    worst: list[Example] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # table columns of the worst rows
    plots: list[Path] = field(default_factory=list)


def evaluate_for_report(info: RunInfo, best: bool = False, plots: bool = False,
                        overrides: dict | None = None) -> Evaluation:
    """Evaluate the run's checkpoint on its test split (config `overrides`, e.g. tta) and find its
    worst-predicted examples; with plots=True also (re)write plots/ as `trainlab report` does."""
    from . import api
    from .report import prediction_sample
    from .worst import describe, row_header, worst_examples

    if "custom" in (info.config.get("model"), info.config.get("dataset")):
        return _stored_evaluation(info, best, "its model and data were passed to trainlab.fit in Python")
    try:
        result, rt, batches, cfg = api.evaluate_checkpoint(str(info.path), best, **(overrides or {}))
    except UserError as e:
        return _stored_evaluation(info, best, str(e))
    raw = worst_examples(rt, batches)
    sample = prediction_sample(rt, batches) if plots else None
    mean, std = rt.normalization()
    spec = _table_spec(result["checkpoint"]) if raw and raw[0]["x"].dim() == 1 else None
    evaluation = Evaluation(result, f"test split of {cfg.dataset}, evaluated now",
                            describe(raw, cfg, result["classes"], mean, std, spec))
    if raw and raw[0]["x"].dim() == 1:
        evaluation.columns = row_header(raw[0]["x"].numel(), spec)
    if plots:
        from .report import write_plots

        evaluation.plots = write_plots(info.path, result, result["classes"], sample, mean, std)
    return evaluation


def _table_spec(checkpoint_path: str) -> dict | None:
    from . import checkpoint

    return (checkpoint.load(Path(checkpoint_path)).get("info") or {}).get("table")


def _stored_evaluation(info: RunInfo, best: bool, reason: str) -> Evaluation:
    """The last validation results saved inside the checkpoint, when the model cannot be rebuilt."""
    from . import checkpoint

    try:
        path = checkpoint.resolve(str(info.path), which="best" if best else "last")
        state = checkpoint.load(path)
    except UserError as e:
        return Evaluation(note=f"no evaluation: {e}")
    result = dict(state.get("metrics") or {})
    result.update(checkpoint=str(path), epoch=state.get("epoch"), step=state.get("step"),
                  classes=state.get("classes") or [])
    return Evaluation(result, f"validation results stored in the checkpoint (not re-evaluated: {reason}); "
                              "worst-predicted examples need a fresh evaluation")


def report_html(run: str | Path, best: bool = False, out: str | Path | None = None,
                plots: bool = False) -> Path:
    """Write the run's HTML report (default RUN/report.html) and return its path."""
    return build_report(run, best, out, plots)[0]


def build_report(run: str | Path, best: bool = False, out: str | Path | None = None,
                 plots: bool = False, overrides: dict | None = None) -> tuple[Path, RunInfo, Evaluation]:
    info = read_run(run)
    evaluation = evaluate_for_report(info, best, plots, overrides)
    path = Path(out) if out else info.path / "report.html"
    try:
        path.write_text(render(info, evaluation), encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from e
    return path, info, evaluation


def render(info: RunInfo, evaluation: Evaluation) -> str:
    title = f"trainlab report: {info.name}"
    body = [f"<h1>{escape(title)}</h1>", _lead(info), h.facts(_headline(info, evaluation)),
            h.section("Curves", curves(info.history), anchor="curves"),
            h.section("Metrics per epoch", epoch_table(info.history), anchor="metrics"),
            h.section("Evaluation", *_evaluation_parts(evaluation), anchor="evaluation"),
            h.section("Worst-predicted test examples", _worst_part(evaluation), anchor="worst"),
            h.section("Config", config_table(info.config), anchor="config"),
            h.section("Timing and hardware", *_timing_parts(info), anchor="timing"),
            h.section("Resume history", _history_part(info), anchor="history")]
    return h.page(title, body)


def _lead(info: RunInfo) -> str:
    c = info.config
    parts = [f"recipe {c.get('recipe', '-')}", f"model {c.get('model', '-')}", f"dataset {c.get('dataset', '-')}",
             f"status: {info.state}", f"folder {info.path}"]
    return f'<p class="lead">{escape(" · ".join(parts))}</p>'


def _headline(info: RunInfo, evaluation: Evaluation) -> list[tuple[str, str]]:
    name = "validation accuracy" if info.metric == "val_acc" else "validation loss"
    items = [(info.state, "status"), (f"{info.epochs_done}/{info.config.get('epochs', '?')}", "epochs")]
    if info.best:
        items.append((format_metric(info.metric, info.best[0]), f"best {name} (epoch {info.best[1]})"))
        items.append((format_metric(info.metric, info.last), f"last {name}"))
    if "accuracy" in evaluation.result:
        items.append((f"{100 * evaluation.result['accuracy']:.2f}%", "accuracy of the evaluated checkpoint"))
    items.append((format_duration(info.wall_seconds), "wall time"))
    return items


def curves(history: list[dict], runs: list[tuple[str, list[dict]]] | None = None) -> str:
    """Loss, accuracy and lr charts; with `runs` [(name, history)] one line per run instead."""
    epochs = [r["epoch"] for r in history]
    if runs is None:
        loss = [("train", epochs, [r["train_loss"] for r in history]),
                ("val", epochs, [r.get("val_loss") for r in history])]
        acc = [("val", epochs, [_percent(r.get("val_acc")) for r in history])]
        lr = [("lr", epochs, [r["lr"] for r in history])]
        charts = [line_chart(loss, title="loss", ylabel="loss"),
                  line_chart(acc, title="validation accuracy", ylabel="accuracy (%)", ceiling=100),
                  line_chart(lr, title="learning rate", ylabel="lr")]
        if not any(r.get("val_acc") is not None for r in history):  # regression: no accuracy chart
            charts[1] = ""
    else:
        def each(key, scale=lambda v: v):
            return [(n, [r["epoch"] for r in hs], [scale(r.get(key)) for r in hs]) for n, hs in runs]

        charts = [line_chart(each("val_acc", _percent), title="validation accuracy", ylabel="accuracy (%)",
                             ceiling=100),
                  line_chart(each("val_loss"), title="validation loss", ylabel="loss"),
                  line_chart(each("train_loss"), title="training loss", ylabel="loss"),
                  line_chart(each("lr"), title="learning rate", ylabel="lr")]
    names = ["validation accuracy", "validation loss", "training loss", "learning rate"] if runs else \
        ["loss", "validation accuracy", "learning rate"]
    images = "".join(h.svg_img(svg, f"{n} per epoch") for svg, n in zip(charts, names) if svg)
    return f'<div class="charts">{images}</div>'


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def epoch_table(history: list[dict]) -> str:
    if not history:
        return '<p class="note">no epoch finished yet (metrics.csv is empty or missing)</p>'
    every = -(-len(history) // MAX_EPOCH_ROWS)
    shown = [r for i, r in enumerate(history) if i % every == 0 or i == len(history) - 1]
    header = ["epoch", "step", "train loss", "val loss", "val accuracy", "lr", "seconds"]
    rows = [[r["epoch"], r["step"], _num(r["train_loss"]), _num(r.get("val_loss")),
             format_metric("val_acc", r.get("val_acc")), f"{r['lr']:.4g}", f"{r['seconds']:.2f}"] for r in shown]
    if not any(r.get("val_acc") is not None for r in history):  # regression: drop the empty column
        header, rows = header[:4] + header[5:], [row[:4] + row[5:] for row in rows]
    note = f'<p class="note">every {every}th epoch of {len(history)} shown</p>' if every > 1 else ""
    return note + h.table(header, rows, left=0, scroll=True)


def _num(value: float | None) -> str:
    """Losses: 4 decimals, or 4 significant digits once they fall below 0.01 (regression runs reach 1e-7)."""
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4g}"


def per_class_rows(confusion: list[list[int]], classes: list[str]) -> list[list[str]]:
    """class, samples, correct, recall (the per-class accuracy), precision and F1, from the counts."""
    rows = []
    for i, name in enumerate(classes):
        support, predicted = sum(confusion[i]), sum(row[i] for row in confusion)
        correct = confusion[i][i]
        recall = correct / support if support else 0.0
        precision = correct / predicted if predicted else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append([name, support, correct, f"{100 * recall:.2f}%", f"{100 * precision:.2f}%", f"{f1:.3f}"])
    return rows


def _evaluation_parts(evaluation: Evaluation) -> list[str]:
    r = evaluation.result
    if not r:
        return [f'<p class="note">{escape(evaluation.note)}</p>']
    where = f"checkpoint {r.get('checkpoint')} (epoch {r.get('epoch')}, step {r.get('step')}); {evaluation.note}"
    parts = [f'<p class="note">{escape(where)}</p>']
    numbers = [("loss", _num(r["loss"]))] if r.get("loss") is not None else []
    if "accuracy" in r:
        numbers.append(("accuracy", f"{100 * r['accuracy']:.2f}%"))
    if r.get("samples"):
        numbers.append(("samples", str(r["samples"])))
    parts.append(h.facts([(v, k) for k, v in numbers]))
    if "confusion" in r:
        classes = [c for c in r.get("classes") or []]
        classes += [str(i) for i in range(len(classes), len(r["confusion"]))]
        parts.append("<h3>Per-class metrics</h3>" + h.table(
            ["class", "samples", "correct", "recall (accuracy)", "precision", "F1"],
            per_class_rows(r["confusion"], classes), scroll=True))
        parts.append("<h3>Confusion matrix</h3><p class=\"note\">rows: true class, columns: predicted class</p>"
                     + h.confusion_table(r["confusion"], classes))
    return parts


def _worst_part(evaluation: Evaluation) -> str:
    worst = evaluation.worst
    if not worst:
        return f'<p class="note">{escape(evaluation.note or "no test examples")}</p>'
    note = '<p class="note">highest loss on the test split first</p>'
    if worst[0].image is not None:
        figures = []
        for e in worst:
            ok = e.true == e.pred  # the highest losses can still be right, with low confidence
            confidence = f" ({100 * e.confidence:.0f}%)" if e.confidence is not None else ""
            caption = (f'true {escape(e.true)}<br>predicted <span class="{"right" if ok else "wrong"}">'
                       f"{escape(e.pred)}</span>{confidence}<br>#{e.index}, loss {e.loss:.3f}")
            figures.append(f'<figure class="{"ok" if ok else "bad"}">{h.png_img(e.image, f"test image {e.index}")}'
                           f"<figcaption>{caption}</figcaption></figure>")
        return note + '<div class="examples">' + "".join(figures) + "</div>"
    if worst[0].confidence is None:  # regression: target and prediction are numbers
        header = ["#", "target", "predicted", "loss"] + evaluation.columns
        rows = [[e.index, e.true, e.pred, _num(e.loss), *(e.row or [])] for e in worst]
        return note + h.table(header, rows, left=1, scroll=True)
    header = ["#", "true", "predicted", "confidence", "loss"] + evaluation.columns
    rows = [[e.index, e.true, e.pred, f"{100 * e.confidence:.0f}%", _num(e.loss), *(e.row or [])] for e in worst]
    return note + h.table(header, rows, left=3, scroll=True)


def config_table(config: dict, columns: int = 3) -> str:
    """All keys in file order, split into side-by-side tables so that 60 keys fit on one screen."""
    items = [[k, _value(v)] for k, v in config.items()]
    size = -(-len(items) // columns) or 1
    tables = [h.table(["key", "value"], items[i:i + size], left=2) for i in range(0, len(items), size)]
    return '<div class="charts">' + "".join(tables) + "</div>"


def _value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return "" if value is None else str(value)


def _timing_parts(info: RunInfo) -> list[str]:
    seconds = [r["seconds"] for r in info.history if r.get("seconds") is not None]
    rows = [["wall time (all sessions)", format_duration(info.wall_seconds)],
            ["training time (sum over epochs)", format_duration(sum(seconds))]]
    if seconds:
        rows.append(["seconds per epoch (mean)", f"{sum(seconds) / len(seconds):.2f}"])
    parts = [h.table(None, rows, left=1)]
    sessions = info.status.get("sessions") or []
    if sessions:
        hardware = sessions[-1].get("hardware", {})
        rows = [[k, hardware[k]] for k in HARDWARE_KEYS if hardware.get(k) not in (None, "")]
        parts.append("<h3>Hardware (latest session)</h3>" + h.table(None, rows, left=2))
    else:
        parts.append('<p class="note">no hardware recorded (no status.json: trained by an older trainlab)</p>')
    return parts


def _history_part(info: RunInfo) -> str:
    sessions = info.status.get("sessions") or []
    if not sessions:
        return '<p class="note">no session history recorded (no status.json)</p>'
    rows = [[i + 1, "resume" if s.get("resumed") else "start", s.get("started", ""), s.get("ended", "(running)"),
             f"epoch {s.get('from_epoch', 0)}, step {s.get('from_step', 0)}",
             f"epoch {s.get('to_epoch', '?')}, step {s.get('to_step', '?')}" if "ended" in s else "-",
             s.get("outcome", "running"), s.get("reason", ""), (s.get("hardware") or {}).get("device", "")]
            for i, s in enumerate(sessions)]
    return h.table(["#", "kind", "started", "ended", "from", "to", "outcome", "reason", "device"], rows, left=8)
