"""Run report plots: the PNGs a training run saves under plots/.

curves.png (loss, val accuracy, learning rate per epoch), and for classification confusion.png,
per_class.png and, for image data, predictions.png (test images with true and predicted labels).
Every function takes plain data (lists, tensors), creates the parent folder and returns the path.
matplotlib is imported inside the functions so that importing this module stays cheap for runs
and commands that never plot.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

RIGHT, WRONG = "#1a7f37", "#cf222e"  # green / red readable on white
MAX_ANNOTATED_CLASSES = 20  # above this, numbers in confusion cells become unreadable clutter


def _pyplot() -> Any:
    """pyplot on the headless Agg backend: runs train on servers without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, title: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if title:
        fig.suptitle(title, fontsize=13)
    try:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    except OSError:  # e.g. a full disk: leave no truncated PNG behind
        path.unlink(missing_ok=True)
        raise
    finally:
        _pyplot().close(fig)  # runs plot every epoch; leaked figures would pile up in memory
    return path


def _class_names(classes: list[str], n: int) -> list[str]:
    """Class names padded with indices, so a short or empty list still labels every class."""
    return [classes[i] if i < len(classes) else str(i) for i in range(n)]


# ---------------------------------------------------------------- curves


def _series(history: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) for the rows where `key` has a value."""
    rows = [r for r in history if r.get(key) is not None]
    return [r["epoch"] for r in rows], [float(r[key]) for r in rows]


def _spans_decades(values: list[float], decades: float = 2.0) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and bool(values) and max(positive) / min(positive) > 10 ** decades


def _style(history: list[dict]) -> dict:
    """Markers while there are few points; with hundreds of epochs they would merge into a smear."""
    return {"marker": "o", "markersize": 4} if len(history) <= 30 else {"linewidth": 1.2}


def _loss_panel(ax: Any, history: list[dict], style: dict) -> None:
    values: list[float] = []
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        x, y = _series(history, key)
        if y:
            ax.plot(x, y, label=label, **style)
            values += y
    if _spans_decades(values):
        ax.set_yscale("log")
    ax.set(title="loss", xlabel="epoch", ylabel="loss")
    if values:
        ax.legend()


def _accuracy_panel(ax: Any, history: list[dict], style: dict) -> None:
    x, y = _series(history, "val_acc")
    if not y:
        ax.set_title("validation accuracy")
        ax.text(0.5, 0.5, "no accuracy (regression)", ha="center", va="center", fontsize=12,
                color="0.4", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.plot(x, [100 * v for v in y], color="C2", label="validation", **style)
    tx, ty = _series(history, "train_acc")  # runs before train accuracy was logged have none
    if ty:
        ax.plot(tx, [100 * v for v in ty], color="C0", label="train", **style)
        ax.legend(loc="lower right")
    best = max(range(len(y)), key=y.__getitem__)
    # best value in the title: an annotation next to the curve collides with it on long runs
    ax.set(title=f"accuracy (best validation {100 * y[best]:.2f}%, epoch {x[best]})", xlabel="epoch",
           ylabel="accuracy (%)")


def _lr_panel(ax: Any, history: list[dict], style: dict) -> None:
    x, y = _series(history, "lr")
    ax.plot(x, y, color="C3", **style)
    if _spans_decades(y):
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))  # 1e-4 reads better than 0.0001
    ax.set(title="learning rate", xlabel="epoch", ylabel="lr")


def _epoch_axis(ax: Any, history: list[dict]) -> None:
    """Whole-epoch ticks; with a single epoch matplotlib would otherwise label 0.96, 0.98, ..."""
    from matplotlib.ticker import MaxNLocator

    epochs = sorted({r["epoch"] for r in history})
    if len(epochs) <= 12:
        ax.set_xticks(epochs)
        ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_curves(history: list[dict], path: Path, title: str = "") -> Path:
    """Loss (train, val), val accuracy in % and learning rate per epoch, three panels side by side.

    history rows have keys epoch, step, train_loss, val_loss (float or None), val_acc (0..1 or None),
    lr, seconds. The loss axis turns logarithmic when its values span more than two decades.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
    style = _style(history)
    _loss_panel(axes[0], history, style)
    _accuracy_panel(axes[1], history, style)
    _lr_panel(axes[2], history, style)
    for ax in axes:
        ax.grid(alpha=0.3)
        if history and ax.get_xticks().size:  # the empty regression panel keeps no ticks
            _epoch_axis(ax, history)
    return _save(fig, path, title)


# ---------------------------------------------------------------- confusion matrix


def _rotate_labels(names: list[str]) -> bool:
    """Whether x labels need slanting to avoid running into each other."""
    return len(names) > 8 or (len(names) > 3 and max(len(n) for n in names) > 6)


def _annotate_cells(ax: Any, counts: list[list[int]], fontsize: float) -> None:
    peak = max((v for row in counts for v in row), default=0)
    for i, row in enumerate(counts):
        for j, v in enumerate(row):
            # dark cells get white text: black on deep blue is unreadable
            color = "white" if peak and v > peak / 2 else "black"
            ax.text(j, i, str(v), ha="center", va="center", color=color, fontsize=fontsize)


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path, title: str = "") -> Path:
    """Heatmap of counts: true class on y, predicted class on x, counts in the cells up to 20 classes."""
    plt = _pyplot()
    n = len(confusion)
    names = _class_names(classes, n)
    side = min(max(5.0, 0.6 * n + 3.0), 22.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side), layout="constrained")
    image = ax.imshow(confusion, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="count")
    label_size = 11 if n <= 10 else 9 if n <= 25 else 7
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    if _rotate_labels(names):
        ax.set_xticklabels(names, rotation=45, ha="right", rotation_mode="anchor", fontsize=label_size)
    else:
        ax.set_xticklabels(names, fontsize=label_size)
    ax.set_yticklabels(names, fontsize=label_size)
    ax.set_xlabel("predicted", fontsize=12)
    ax.set_ylabel("true", fontsize=12)
    if n <= MAX_ANNOTATED_CLASSES:
        digits = len(str(max((v for row in confusion for v in row), default=0)))
        _annotate_cells(ax, confusion, fontsize=12 if n <= 10 and digits <= 4 else 9)
    return _save(fig, path, title)


# ---------------------------------------------------------------- per-class accuracy


def plot_per_class(per_class: list[float], classes: list[str], path: Path, title: str = "") -> Path:
    """Horizontal bars of per-class accuracy in %, value at each bar's end, a line at the mean.

    per_class holds fractions in 0..1 (as evaluation reports them); values above 1 are taken as %.
    """
    plt = _pyplot()
    scale = 1.0 if any(v > 1.0 for v in per_class) else 100.0
    percent = [scale * v for v in per_class]
    names = _class_names(classes, len(percent))
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.38 * len(percent) + 1.5)), layout="constrained")
    rows = list(range(len(percent)))
    ax.barh(rows, percent, color="C0", height=0.7)
    ax.set_yticks(rows, names, fontsize=10 if len(names) <= 30 else 7)
    ax.invert_yaxis()  # first class on top, in the same order as the confusion matrix
    for row, value in zip(rows, percent):
        # white backing keeps the value readable where the mean line runs through it
        ax.text(value + 1, row, f"{value:.1f}%", va="center", fontsize=9, zorder=3,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    if percent:
        mean = sum(percent) / len(percent)
        ax.axvline(mean, color="C3", linestyle="--", label=f"mean {mean:.1f}%", zorder=2)
        # legend above the axes: inside it would cover the value labels of the top bars
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.margins(y=0.02)
    ax.set_xlim(0, 112)  # headroom for the "100.0%" labels
    ax.set_xlabel("accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path, title)


# ---------------------------------------------------------------- prediction grid


def denormalize(images: "torch.Tensor", mean: list[float] | None = None,
                std: list[float] | None = None) -> "torch.Tensor":
    """Images (N, C, H, W) as float in [0, 1] for display.

    uint8 images are scaled from 0..255; float images normalised with mean/std get x * std + mean.
    Float images without mean/std are assumed to be in 0..1 already. The result is clipped to [0, 1].
    """
    import torch

    if images.dtype == torch.uint8:
        out = images.float() / 255.0
    else:
        out = images.detach().float().cpu()
        if mean is not None and std is not None:
            shape = (1, -1, 1, 1)  # one value per channel
            out = out * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
    return out.cpu().clamp(0.0, 1.0)


def _captions(true: list[str], pred: list[str]) -> list[str]:
    """'true: X / pred: Y' under each image; on two lines when any is long (CIFAR's 'automobile'),
    so neighbours do not collide, and then for all of them so that the rows line up."""
    short = all(len(f"true: {t} / pred: {p}") <= 22 for t, p in zip(true, pred))
    separator = " / " if short else "\n"
    return [f"true: {t}{separator}pred: {p}" for t, p in zip(true, pred)]


def plot_predictions(images: "torch.Tensor", true: list[int], pred: list[int], classes: list[str], path: Path,
                     mean: list[float] | None = None, std: list[float] | None = None,
                     max_images: int = 16, title: str = "") -> Path:
    """Grid of up to `max_images` images, 4 per row, captioned green when right and red when wrong.

    images: (N, C, H, W), uint8 0..255 or float normalised with mean/std; C is 1 (gray) or 3 (RGB).
    """
    plt = _pyplot()
    count = min(len(images), len(true), len(pred), max_images)
    pixels = denormalize(images[:count], mean, std)
    true, pred = [int(t) for t in true[:count]], [int(p) for p in pred[:count]]  # tensors work too
    names = _class_names(classes, max([*true, *pred, -1]) + 1)
    captions = _captions([names[t] for t in true], [names[p] for p in pred])
    cols = 4
    rows = max(1, math.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows), squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= count:
            ax.axis("off")
            continue
        image = pixels[k]
        if image.shape[0] == 1:
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        ok = true[k] == pred[k]
        ax.set_xlabel(captions[k], color=RIGHT if ok else WRONG, fontsize=10)
        for spine in ax.spines.values():
            spine.set_edgecolor(RIGHT if ok else WRONG)
            spine.set_linewidth(2)
    return _save(fig, path, title=title)
