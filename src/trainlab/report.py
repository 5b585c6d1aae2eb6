"""Run reports: evaluation results as a readable table, and the run's plots."""
from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

PER_BUCKET = 2  # images kept per (class, right/wrong) while scanning for the prediction grid


def format_eval(r: dict) -> str:
    lines = [f"checkpoint: {r['checkpoint']} (epoch {r['epoch']}, step {r['step']})",
             f"data: {r['dataset']} test split, {r['samples']} samples",
             f"loss: {r['loss']:.4f}"]
    if "rmse" in r:  # regression, in the target's own units
        r2 = f"{r['r2']:.4f}" if r.get("r2") is not None else "- (constant target)"
        lines.append(f"RMSE: {r['rmse']:.6g}  MAE: {r['mae']:.6g}  R²: {r2}")
    if "accuracy" not in r:
        return "\n".join(lines)
    classes = r["classes"] or [str(i) for i in range(len(r["per_class"]))]
    lines.append(f"accuracy: {100 * r['accuracy']:.2f}%")
    if "macro_f1" in r:
        lines.append(f"macro precision: {100 * r['macro_precision']:.2f}%  recall: {100 * r['macro_recall']:.2f}%  "
                     f"F1: {100 * r['macro_f1']:.2f}%")
    lines += _per_class_lines(r, classes)
    width = max(len(c) for c in classes)
    cells = max(5, max(len(str(v)) for row in r["confusion"] for v in row) + 1, width + 1)
    lines.append("confusion matrix (rows: true class, columns: predicted class):")
    lines.append(" " * (width + 2) + "".join(f"{c[:cells - 1]:>{cells}}" for c in classes))
    for c, row in zip(classes, r["confusion"]):
        lines.append(f"  {c:<{width}}" + "".join(f"{v:>{cells}}" for v in row))
    return "\n".join(lines)


def eval_json(r: dict) -> dict:
    """`trainlab eval --json`: the result with classes named: per_class as {class: accuracy},
    confusion as {"labels": [...], "matrix": rows of true class, columns of predicted class}."""
    per_class = ("per_class", "precision", "recall", "f1")  # one value per class each
    out = {k: v for k, v in r.items() if k not in (*per_class, "confusion", "classes")}
    if "per_class" in r:
        labels = r.get("classes") or [str(i) for i in range(len(r["per_class"]))]
        out.update({k: dict(zip(labels, r[k])) for k in per_class if k in r})
        out["confusion"] = {"labels": labels, "matrix": r["confusion"]}
    return out


def _per_class_lines(r: dict, classes: list[str]) -> list[str]:
    """Per-class accuracy (= recall), with precision and F1 where the evaluation has them."""
    width = max(len(c) for c in classes)
    if "precision" not in r:
        return ["per-class accuracy:"] + [f"  {c:<{width}}  {100 * a:6.2f}%" for c, a in zip(classes, r["per_class"])]
    width = max(width, len("class"))
    lines = ["per-class accuracy:",
             f"  {'class':<{width}}  {'accuracy':>8}  {'precision':>9}  {'F1':>8}"]
    for c, a, p, f in zip(classes, r["per_class"], r["precision"], r["f1"]):
        lines.append(f"  {c:<{width}}  {100 * a:7.2f}%  {100 * p:8.2f}%  {100 * f:7.2f}%")
    return lines


def format_history(history: list[dict]) -> str:
    lines = [f"{'epoch':>5} {'step':>7} {'train_loss':>10} {'val_loss':>9} {'val_acc':>8} {'lr':>9} {'seconds':>8}"]
    for h in history:
        acc = f"{100 * h['val_acc']:.2f}%" if h.get("val_acc") is not None else "-"
        val = f"{h['val_loss']:.4f}" if h.get("val_loss") is not None else "-"
        lines.append(f"{h['epoch']:>5} {h['step']:>7} {h['train_loss']:>10.4f} {val:>9} {acc:>8} {h['lr']:>9.3g} "
                     f"{h['seconds']:>8.2f}")
    return "\n".join(lines)


def history_from_csv(run_dir: Path) -> list[dict]:
    """metrics.csv rows with numbers parsed ('' -> None), including epochs from before a resume."""
    from .runs import read_metrics

    def number(v: str):
        return None if v in ("", None) else float(v)

    if not (Path(run_dir) / "metrics.csv").exists():  # a checkpoint copied out of its run folder
        return []
    return [{k: (int(v) if k in ("epoch", "step") else number(v)) for k, v in row.items()} for row in read_metrics(run_dir)]


def write_plots(run_dir: Path, evaluation: dict, classes: list[str], sample: tuple | None,
                mean: list[float], std: list[float]) -> list[Path]:
    """plots/curves.png always; confusion.png and per_class.png for classification; predictions.png
    for images. `sample` is (images, true, predicted) from the test split, or None.

    A plot that cannot be written (disk full, read-only folder) costs only that plot: one warning
    line on stderr, the others are still tried, and the paths written are returned. Plots are
    written after the checkpoints, which a failure here never touches.
    """
    from .plots import plot_confusion, plot_curves, plot_per_class, plot_predictions

    out, title = Path(run_dir) / "plots", Path(run_dir).name
    history = history_from_csv(run_dir)
    jobs = {}  # file name -> a call that writes it
    if history:
        jobs["curves.png"] = partial(plot_curves, history, out / "curves.png", title)
    if "confusion" in evaluation:
        jobs["confusion.png"] = partial(plot_confusion, evaluation["confusion"], classes, out / "confusion.png", title)
        jobs["per_class.png"] = partial(plot_per_class, evaluation["per_class"], classes, out / "per_class.png", title)
    if sample is not None and sample[0].dim() == 4:
        images, true, pred = sample
        wrong = int((true != pred).sum())
        note = f"test predictions: a sample across classes, {wrong} wrong and {len(true) - wrong} right"
        jobs["predictions.png"] = partial(plot_predictions, images, true.tolist(), pred.tolist(), classes,
                                          out / "predictions.png", mean=mean or None, std=std or None, title=note)
    paths, failed = [], {}
    for name, write in jobs.items():
        try:
            paths.append(write())
        except OSError as e:
            failed[name] = e
    if failed:
        reason = next(iter(failed.values()))
        print(f"warning: could not write {', '.join(failed)} in {out}: {reason.strerror or reason} "
              "(checkpoints are not affected)", file=sys.stderr)
    return paths


def prediction_sample(rt, batches, count: int = 16) -> tuple | None:
    """(images, true, predicted) for the prediction grid: a stratified sample over the true classes,
    alternating wrong and right answers where both exist, so a model that answers one class shows it.
    None for regression. Images stay as the model saw them (normalised)."""
    import torch

    if not rt.criterion.is_classification:
        return None
    buckets: dict[tuple[int, bool], list] = {}  # (true class, right?) -> [(image, predicted)]
    model = rt.inference_model()  # the weights and test-time augmentation every evaluation uses
    with torch.no_grad():
        for x, y in batches.epoch():
            with rt.autocast:
                pred = rt.criterion.predict(model(x).float())
            for image, t, p in zip(x.float().cpu(), y.tolist(), pred.tolist()):
                bucket = buckets.setdefault((int(t), t == p), [])
                if len(bucket) < PER_BUCKET:
                    bucket.append((image, p))
    picked = []  # round-robin over classes, wrong first, then right, until `count`
    for rank in range(PER_BUCKET):
        for right in (False, True):
            for t in sorted({t for t, _ in buckets}):
                items = buckets.get((t, right), [])
                if rank < len(items) and len(picked) < count:
                    picked.append((items[rank][0], t, items[rank][1]))
    if not picked:
        return None
    return (torch.stack([p[0] for p in picked]), torch.tensor([p[1] for p in picked]),
            torch.tensor([p[2] for p in picked]))
