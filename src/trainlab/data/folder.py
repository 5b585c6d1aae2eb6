"""Folders of labelled images: root/<label>/*.jpg, with or without train/ val/ test/ split folders.

Class names are the sorted label folders. Images are converted to RGB (grayscale, RGBA and
palette images too) and resized once at decode time (shorter side, then a centre crop to a
square), so a whole folder becomes one uint8 (N, 3, S, S) tensor that the cache keeps on disk.
`LabelledImages` is the notes' MyData(root_dir, label_dir) for API users; `a + b` concatenates.
Images over MAX_PIXELS (decompression bombs: a 109 KB PNG can claim 30000x30000) are refused
from their header, before any pixel is decoded; training skips them with one line each.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import UserError
from .images import EXTENSIONS, ImageTooLarge, decode_image, open_image

SPLITS = ("train", "val", "test")


def decode(path: Path, size: int) -> torch.Tensor:
    """One image file -> uint8 (3, size, size) (size 0: as it is); an unreadable or too large file is a
    UserError naming it."""
    return decode_image(path, 3, size, size)


def scan(root: Path, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """Image files under root/<label>/ with their class indices; non-image files skipped with one warning."""
    if not root.is_dir():
        raise UserError(f"image folder not found: {root}")
    classes = classes or sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{root} has no label folders: expected {root}/<label>/*.jpg")
    files, labels, skipped = [], [], []
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise UserError(f"label folder missing: {folder} (classes are {', '.join(classes)})")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.suffix.lower() in EXTENSIONS:
                files.append(path)
                labels.append(index)
            elif not path.name.startswith("."):
                skipped.append(path)
    if skipped:
        print(f"warning: skipped {len(skipped)} non-image file(s) under {root}, e.g. {skipped[0]}", file=sys.stderr)
    if not files:
        raise UserError(f"no images ({', '.join(sorted(EXTENSIONS))}) found under {root}")
    return files, labels, classes


def layout(root: Path) -> dict[str, Path]:
    """{'train': ..., 'test': ...} for split folders (val/ or test/ as the test split), or {'all': root}."""
    subs = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    if "train" in subs and ({"val", "test"} & subs):
        return {"train": root / "train", "test": root / ("val" if "val" in subs else "test")}
    return {"all": root}


def decode_all(files: list[Path], size: int) -> tuple[torch.Tensor, list[int]]:
    """(uint8 (N, 3, S, S), indices into `files` that were kept): too large images are skipped with
    one printed line each; any other unreadable image is an error."""
    from tqdm.auto import tqdm

    images, kept = [], []
    for i, path in enumerate(tqdm(files, desc="decoding images", unit="img", leave=False, mininterval=1)):
        try:
            images.append(decode(path, size))
            kept.append(i)
        except ImageTooLarge as e:
            print(f"skipped: {e}", file=sys.stderr)
    if not images:
        return torch.zeros((0, 3, size, size), dtype=torch.uint8), kept
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) > 1:
        raise UserError(f"images have different sizes {sorted(shapes)[:3]}; set image_size=N to resize them")
    return torch.stack(images), kept


def within_limit(files: list[Path]) -> list[int]:
    """Indices of the files whose header is within MAX_PIXELS (the others skipped with one line each):
    for folders decoded per sample, where a refused file cannot be dropped later."""
    kept = []
    for i, path in enumerate(files):
        try:
            with open_image(path):
                kept.append(i)
        except ImageTooLarge as e:
            print(f"skipped: {e}", file=sys.stderr)
        except OSError:
            kept.append(i)  # unreadable: decode names it when the sample is used
    return kept


class FolderFiles(Dataset):
    """Decode-per-sample dataset over image files: the path for folders too large to keep in memory."""

    def __init__(self, files: list[Path], labels: list[int], classes: list[str], size: int):
        self.files, self.labels, self.classes, self.size = files, labels, classes, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return decode(self.files[i], self.size), self.labels[i]


class LabelledImages(FolderFiles):
    """The notes' MyData(root_dir, label_dir): the images of one label folder, as (uint8 image, class index).

    `classes` defaults to the sorted label folders under root_dir, so `ants + bees` (a ConcatDataset)
    has consistent labels. `size` resizes and centre-crops at load time (0 keeps the original size).
    """

    def __init__(self, root_dir: str | Path, label_dir: str, classes: list[str] | None = None, size: int = 0):
        root = Path(root_dir)
        classes = classes or sorted(p.name for p in root.iterdir() if p.is_dir())
        if label_dir not in classes:
            raise UserError(f"label folder '{label_dir}' not among {classes} under {root}")
        files, _, _ = scan(root, [label_dir])
        super().__init__(files, [classes.index(label_dir)] * len(files), classes, size)
