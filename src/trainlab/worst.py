"""The worst-predicted test examples of a trained model, for the HTML report.

One ordered pass over the test batches computes every sample's loss (the run's own loss with
reduction="none") and keeps the k highest together with their inputs, so memory stays at k samples
whatever the test split's size. Images come back as PIL images (un-normalised), table rows as their
original column values (decoded with the run's fitted preprocessing).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .optim import Criterion


@dataclass
class Example:
    index: int  # position in the test split
    loss: float
    true: str  # class name, or the target value for regression
    pred: str
    confidence: float | None  # probability of the predicted class; None for regression
    image: object = None  # PIL image for image data
    row: list[str] | None = None  # decoded feature values for tables


def probabilities(out: torch.Tensor, loss: str) -> torch.Tensor | None:
    """(B, classes) probabilities from model outputs under `loss`; None for regression."""
    if loss == "cross_entropy":
        return out.softmax(1)
    if loss == "nll":  # the model already ends in log_softmax
        return out.exp()
    if loss in ("bce", "bce_logits"):
        p1 = out.reshape(-1) if loss == "bce" else out.reshape(-1).sigmoid()
        return torch.stack([1 - p1, p1], 1)
    return None


@torch.no_grad()
def worst_examples(rt, batches, k: int = 12) -> list[dict]:
    """The k highest-loss test samples as dicts of tensors, worst first, through the run's runtime
    (its precision and memory format); per-sample losses without label smoothing."""
    criterion = Criterion(rt.cfg.loss, "none")
    model = rt.inference_model()  # the weights and test-time augmentation every evaluation uses
    kept: dict[str, torch.Tensor] | None = None
    offset = 0
    for x, y in batches.epoch():
        with rt.autocast:
            out = model(x).float()
        losses = criterion(out, y).reshape(len(y), -1).mean(1)
        top = losses.topk(min(k, len(losses))).indices
        batch = {"x": x[top].float().cpu(), "y": y[top].cpu(), "out": out[top].cpu(), "loss": losses[top].cpu(),
                 "index": top.cpu() + offset}
        kept = batch if kept is None else {key: torch.cat([kept[key], batch[key]]) for key in batch}
        order = kept["loss"].topk(min(k, len(kept["loss"]))).indices
        kept = {key: value[order] for key, value in kept.items()}
        offset += len(y)
    return [] if kept is None else _rows(kept)


def _rows(kept: dict[str, torch.Tensor]) -> list[dict]:
    return [{key: value[i] for key, value in kept.items()} for i in range(len(kept["loss"]))]


def describe(raw: list[dict], cfg, classes: list[str], mean: list[float], std: list[float],
             table_spec: dict | None) -> list[Example]:
    """Readable examples: class names, confidence, a display image or the decoded table row."""
    from .plots import denormalize

    examples = []
    for r in raw:
        probs = probabilities(r["out"].unsqueeze(0), cfg.loss)
        if probs is not None:
            pred = int(probs[0].argmax())
            true, confidence = int(r["y"]), float(probs[0, pred])
            names = [classes[i] if i < len(classes) else str(i) for i in (true, pred)]
            example = Example(int(r["index"]), float(r["loss"]), names[0], names[1], confidence)
        else:
            example = Example(int(r["index"]), float(r["loss"]), f"{float(r['y']):.4g}",
                              f"{float(r['out'].reshape(-1)[0]):.4g}", None)
        x = r["x"]
        if x.dim() == 3:
            example.image = to_pil(denormalize(x.unsqueeze(0), mean or None, std or None)[0])
        else:
            example.row = decode_row(x.reshape(-1), table_spec)
        examples.append(example)
    return examples


def to_pil(image: torch.Tensor):
    """(C, H, W) floats in [0, 1] as a PIL image (grey for one channel)."""
    from PIL import Image

    pixels = (image * 255).round().to(torch.uint8)
    if pixels.shape[0] == 1:
        return Image.fromarray(pixels[0].numpy())  # (H, W) uint8: grey
    return Image.fromarray(pixels[:3].permute(1, 2, 0).contiguous().numpy())  # (H, W, 3) uint8: RGB


def row_header(width: int, table_spec: dict | None, limit: int = 16) -> list[str]:
    """Column names for decoded rows: the table's feature columns, else x0, x1, ..."""
    if table_spec:
        return [f["name"] for f in table_spec["features"]][:limit]
    return [f"x{i}" for i in range(min(width, limit))]


def decode_row(x: torch.Tensor, table_spec: dict | None, limit: int = 16) -> list[str]:
    """Original cell values from a preprocessed row: standardised numbers scaled back, one-hot
    blocks turned back into their category; without a spec, the first `limit` raw features."""
    values = x.tolist()
    if not table_spec:
        return [f"{v:.4g}" for v in values[:limit]]
    cells, j = [], 0
    for feature in table_spec["features"]:
        if feature["kind"] == "numeric":
            value = values[j] * feature["std"] + feature["mean"]
            # float32 round-off leaves about 1e-8 * std where the original cell was 0
            cells.append(f"{0.0 if abs(value) < 1e-6 * feature['std'] else value:.4g}")
            j += 1
        else:
            block = values[j:j + len(feature["categories"])]
            hot = max(range(len(block)), key=block.__getitem__) if block and max(block) > 0 else None
            cells.append(feature["categories"][hot] if hot is not None else "(unseen)")
            j += len(block)
    return cells[:limit]
