"""Run report plots: each writes a real, non-blank PNG, for the shapes of data runs produce."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from trainlab.plots import denormalize, plot_confusion, plot_curves, plot_per_class, plot_predictions

CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def assert_png(path: Path, min_width: int = 400) -> Image.Image:
    """The file is a PNG of sensible size with more than a blank canvas in it."""
    assert path.is_file()
    image = Image.open(path)
    assert image.format == "PNG"
    assert image.width >= min_width and image.height >= 200
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 10
    return image.convert("RGB")


def history(epochs: int, classification: bool = True) -> list[dict]:
    return [{"epoch": e, "step": 10 * e, "train_loss": 2.0 / e, "val_loss": 2.2 / e,
             "val_acc": 1 - 0.5 / e if classification else None, "lr": max(0.1 * 0.9 ** e, 1e-5), "seconds": 1.5 * e}
            for e in range(1, epochs + 1)]


def test_curves_for_classification_creates_parent_folders(tmp_path):
    path = tmp_path / "run" / "plots" / "curves.png"
    assert plot_curves(history(10), path, title="mlp on blobs") == path
    assert_png(path, min_width=1000)  # three panels side by side


@pytest.mark.parametrize("epochs", [1, 1000])
def test_curves_for_one_and_many_epochs(tmp_path, epochs):
    assert_png(plot_curves(history(epochs), tmp_path / "curves.png"))


def test_curves_for_regression_without_accuracy_and_wide_loss_range(tmp_path):
    rows = history(30, classification=False)
    for r in rows:  # losses spanning several decades switch the axis to log scale
        r["train_loss"] *= 10 ** (3 - r["epoch"] / 5)
        r["val_loss"] = None if r["epoch"] % 2 else r["train_loss"] * 1.1
    assert_png(plot_curves(rows, tmp_path / "curves.png"))


def confusion(n: int) -> list[list[int]]:
    return [[90 if i == j else (i + j) % 7 for j in range(n)] for i in range(n)]


@pytest.mark.parametrize("classes", [["ants", "bees"], CIFAR, [f"class_{i}" for i in range(25)]],
                         ids=["2", "10-cifar", "25"])
def test_confusion(tmp_path, classes):
    path = tmp_path / "plots" / "confusion.png"
    assert plot_confusion(confusion(len(classes)), classes, path, title="test") == path
    assert_png(path)


def test_confusion_labels_missing_class_names_with_indices(tmp_path):
    assert_png(plot_confusion(confusion(3), [], tmp_path / "confusion.png"))


@pytest.mark.parametrize("n", [2, 10, 25])
def test_per_class(tmp_path, n):
    classes = (CIFAR * 3)[:n]
    path = tmp_path / "plots" / "per_class.png"
    assert plot_per_class([0.5 + 0.5 * i / n for i in range(n)], classes, path, title="test") == path
    assert_png(path)


def test_denormalize_uint8_scales_to_unit_range():
    images = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    assert torch.allclose(denormalize(images), torch.tensor([0.0, 128 / 255, 1.0]).view(1, 1, 1, 3))


def test_denormalize_undoes_per_channel_normalisation_and_clips():
    mean, std = [0.5, 0.4, 0.3], [0.5, 0.2, 0.1]
    grey = torch.full((2, 3, 4, 4), 128 / 255)
    normalised = (grey - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(denormalize(normalised, mean, std), grey, atol=1e-6)
    assert denormalize(torch.full((1, 3, 2, 2), 50.0), mean, std).max() == 1.0


def test_predictions_uint8_grayscale(tmp_path):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8, generator=g)
    true = [i % 10 for i in range(20)]
    pred = [t if i % 3 else (t + 1) % 10 for i, t in enumerate(true)]
    path = tmp_path / "plots" / "predictions.png"
    assert plot_predictions(images, true, pred, [str(i) for i in range(10)], path) == path
    assert_png(path)


def test_predictions_normalised_rgb_shows_the_original_colours(tmp_path):
    """A uint8 grey 128 image normalised with mean/std 0.5 must come out grey, not black."""
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    images = (torch.full((4, 3, 32, 32), 128 / 255) - 0.5) / 0.5
    path = plot_predictions(images, [0, 1, 2, 3], [0, 1, 5, 3], CIFAR, tmp_path / "predictions.png",
                            mean=mean, std=std)
    image = assert_png(path)
    grey = sum(count for count, rgb in image.getcolors(maxcolors=1_000_000)
               if all(abs(c - 128) <= 2 for c in rgb))
    assert grey > 4 * 100 * 100  # four image cells of about 250x250 px each, well over this


def test_predictions_limits_the_grid_to_max_images(tmp_path):
    images = torch.zeros(40, 3, 8, 8, dtype=torch.uint8)
    small = plot_predictions(images, [0] * 40, [0] * 40, CIFAR, tmp_path / "a.png", max_images=4)
    large = plot_predictions(images, [0] * 40, [0] * 40, CIFAR, tmp_path / "b.png")
    assert Image.open(large).height > 3 * Image.open(small).height  # 4 rows of 4 against 1 row


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, trainlab.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
