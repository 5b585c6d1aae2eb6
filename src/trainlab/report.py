"""Text reports: evaluation results as a readable table."""
from __future__ import annotations


def format_eval(r: dict) -> str:
    lines = [f"checkpoint: {r['checkpoint']} (epoch {r['epoch']}, step {r['step']})",
             f"data: {r['dataset']} test split, {r['samples']} samples",
             f"loss: {r['loss']:.4f}"]
    if "accuracy" not in r:
        return "\n".join(lines)
    classes = r["classes"] or [str(i) for i in range(len(r["per_class"]))]
    lines.append(f"accuracy: {100 * r['accuracy']:.2f}%")
    width = max(len(c) for c in classes)
    lines.append("per-class accuracy:")
    lines += [f"  {c:<{width}}  {100 * a:6.2f}%" for c, a in zip(classes, r["per_class"])]
    cells = max(5, max(len(str(v)) for row in r["confusion"] for v in row) + 1, width + 1)
    lines.append("confusion matrix (rows: true class, columns: predicted class):")
    lines.append(" " * (width + 2) + "".join(f"{c[:cells - 1]:>{cells}}" for c in classes))
    for c, row in zip(classes, r["confusion"]):
        lines.append(f"  {c:<{width}}" + "".join(f"{v:>{cells}}" for v in row))
    return "\n".join(lines)
