"""The built-in datasets: MNIST (bundled sample, official, Fashion), CIFAR-10, image folders, CSV tables.

Every builder takes the same plain keyword arguments (see `build_dataset`) and returns `Splits`.
Image datasets go through the decoded-tensor cache; official datasets are downloaded (with
checksums) into `data_dir` in torchvision's layout when missing and a network exists.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import UserError
from . import Splits, TensorData, register_dataset, stratified_split

DIGITS = [str(i) for i in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IDX_STEMS = [f"{p}-{k}-ubyte" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
# Builders import torch and the readers themselves, so that listing datasets does not load them.


@register_dataset("mnist-sample")
def mnist_sample(**_) -> Splits:
    """Bundled MNIST: 5,000 training images (500 per class) and the official 10,000 test images."""
    from .idx import read_pair

    folder = Path(str(resources.files("trainlab") / "assets" / "mnist-sample"))
    train, test = read_pair(folder, "train5k"), read_pair(folder, "t10k")
    return Splits(TensorData(*train), TensorData(*test), DIGITS, f"bundled {folder}")


def idx_dataset(name: str, folder: Path, classes: list[str], mirror: str, download: bool, cache: bool) -> Splits:
    from .cache import cached
    from .idx import find, read_pair

    if not all(find(folder, stem).exists() for stem in IDX_STEMS):
        from .download import ensure

        ensure(name, folder, mirror=mirror, allow_download=download)
    sources = [find(folder, stem) for stem in IDX_STEMS]

    def build() -> Splits:
        train, test = read_pair(folder, "train"), read_pair(folder, "t10k")
        return Splits(TensorData(*train), TensorData(*test), classes, str(folder))

    return cached(name, sources, {}, build, cache)


@register_dataset("mnist")
def mnist(root: Path, mirror: str = "", download: bool = True, cache: bool = True, **_) -> Splits:
    """Official MNIST in torchvision's layout <data_dir>/MNIST/raw/ (downloaded if missing)."""
    return idx_dataset("mnist", root / "MNIST" / "raw", DIGITS, mirror, download, cache)


@register_dataset("fashion-mnist")
def fashion_mnist(root: Path, mirror: str = "", download: bool = True, cache: bool = True, **_) -> Splits:
    """Fashion-MNIST in torchvision's layout <data_dir>/FashionMNIST/raw/ (downloaded if missing)."""
    return idx_dataset("fashion-mnist", root / "FashionMNIST" / "raw", FASHION, mirror, download, cache)


@register_dataset("cifar10")
def cifar10(root: Path, mirror: str = "", download: bool = True, cache: bool = True, **_) -> Splits:
    """CIFAR-10 in the official python layout <data_dir>/cifar-10-batches-py/ (downloaded if missing)."""
    from .cache import cached
    from .cifar import TRAIN_BATCHES, class_names, load_batches

    folder = root / "cifar-10-batches-py"
    names = [*TRAIN_BATCHES, "test_batch"]
    if not all((folder / n).exists() for n in names):
        from .download import RESOURCES, ensure, safe_extract

        archive = RESOURCES["cifar10"][0].filename
        ensure("cifar10", root, mirror=mirror, allow_download=download)
        safe_extract(root / archive, root)
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:  # an archive that is not the official one: say so, not FileNotFoundError later
            raise UserError(f"{root / archive} does not hold the CIFAR-10 python batches: after extracting it, "
                            f"{folder} lacks {', '.join(missing)}")

    def build() -> Splits:
        train, test = load_batches(folder, TRAIN_BATCHES), load_batches(folder, ["test_batch"])
        return Splits(TensorData(*train), TensorData(*test), class_names(folder), str(folder))

    return cached("cifar10", [folder / n for n in names], {}, build, cache)


def folder_splits(root: Path, *, image_size: int, test_fraction: float, seed: int, cache: bool,
                  max_resident_mb: int) -> Splits:
    """An image folder (split folders or one folder split by test_fraction), decoded and cached."""
    import torch

    from .cache import cached
    from .folder import FolderFiles, decode_all, layout, scan, within_limit

    parts = layout(root)
    files, labels, classes = scan(parts.get("train", root))
    if len(classes) < 2:
        raise UserError(f"{parts.get('train', root)} has a single label folder '{classes[0]}': a classifier needs "
                        f"at least two, laid out as DIR/<label>/*.jpg")
    test_files, test_labels, _ = scan(parts["test"], classes) if "test" in parts else ([], [], classes)
    settings = {"image_size": image_size, "test_fraction": test_fraction if "all" in parts else None, "seed": seed}
    y, test_y = torch.tensor(labels), torch.tensor(test_labels, dtype=torch.int64)
    if "all" in parts:
        tr, te = stratified_split(y, test_fraction, seed)
        files, test_files = [files[i] for i in tr], [files[i] for i in te]
        y, test_y = y[tr], y[te]
    side = image_size or max(first_image_size(files))  # images keeping their size: judge by the first
    if (len(files) + len(test_files)) * 3 * side * side > max_resident_mb * 2**20:
        print(f"note: {root} is larger than max_resident_mb={max_resident_mb}: decoding per sample with workers")
        keep, test_keep = within_limit(files), within_limit(test_files)
        return Splits(FolderFiles([files[i] for i in keep], y[keep].tolist(), classes, image_size),
                      FolderFiles([test_files[i] for i in test_keep], test_y[test_keep].tolist(), classes, image_size),
                      classes, str(root))

    def build() -> Splits:
        (x, keep), (test_x, test_keep) = decode_all(files, image_size), decode_all(test_files, image_size)
        if not len(keep):
            raise UserError(f"no usable training images under {root}: every one was refused")
        return Splits(TensorData(x, y[keep]), TensorData(test_x, test_y[test_keep]), classes, str(root))

    return cached("folder", files + test_files, settings, build, cache)


def first_image_size(files: list[Path]) -> tuple[int, int]:
    """The size of the first image within the pixel limit (a refused one is skipped later, with a line)."""
    from .images import ImageTooLarge, open_image

    for path in files:
        try:
            with open_image(path) as img:
                return img.size
        except ImageTooLarge:
            continue
        except OSError as e:
            raise UserError(f"cannot read image {path}: {e}") from e
    raise UserError(f"every image is over the pixel limit, e.g. {files[0]}")


@register_dataset("folder")
def folder(root: Path, data_path: str = "", image_size: int = 0, test_fraction: float = 0.2, seed: int = 0,
           cache: bool = True, max_resident_mb: int = 4096, **_) -> Splits:
    """A folder of labelled images: data_path/<label>/*.jpg, or data_path/{train,val|test}/<label>/*.jpg."""
    if not data_path:
        raise UserError("dataset=folder needs data_path=DIR, a folder laid out as DIR/<label>/*.jpg")
    return folder_splits(Path(data_path).expanduser(), image_size=image_size or 64, test_fraction=test_fraction,
                         seed=seed, cache=cache, max_resident_mb=max_resident_mb)


@register_dataset("ants-bees")
def ants_bees(root: Path, image_size: int = 0, cache: bool = True, max_resident_mb: int = 4096, **_) -> Splits:
    """Notes 003/004 ants vs bees photos: <data_dir>/hymenoptera_data/{train,val}/{ants,bees}/*.jpg."""
    return folder_splits(root / "hymenoptera_data", image_size=image_size or 64, test_fraction=0.2, seed=0,
                         cache=cache, max_resident_mb=max_resident_mb)


@register_dataset("cifar10-jpg")
def cifar10_jpg(root: Path, image_size: int = 0, cache: bool = True, max_resident_mb: int = 4096, **_) -> Splits:
    """The shared JPEG copy of CIFAR-10 as an image folder: <data_dir>/cifar10-jpg/{train,test}/<class>/."""
    return folder_splits(root / "cifar10-jpg", image_size=image_size, test_fraction=0.2, seed=0, cache=cache,
                         max_resident_mb=max_resident_mb)


def table_dataset(path: Path, *, target: str, test_fraction: float, seed: int, task: str, cache: bool,
                  spec: dict | None = None, columns: dict | None = None) -> Splits:
    """A CSV table parsed, split and preprocessed once; later runs load the cached tensors and spec.
    With `spec` (a checkpoint's fitted preprocessing) nothing is fitted: both splits use it.
    `columns` holds the drop/categorical/numeric overrides (lists of column names)."""
    from .cache import cached
    from .table import table_splits

    if not path.is_file():
        raise UserError(f"missing data file: {path}")
    columns = columns or {}
    settings = {"target": target, "test_fraction": test_fraction, "seed": seed, "task": task, "spec": spec,
                "columns": columns, "reader": 2}  # reader 2: pandas, schema inference, scaled regression targets
    return cached("table", [path], settings, lambda: table_splits(path, target=target, test_fraction=test_fraction,
                                                                 seed=seed, task=task, spec=spec, **columns), cache)


@register_dataset("table")
def table(data_path: str = "", target: str = "", test_fraction: float = 0.2, seed: int = 0, task: str = "auto",
          cache: bool = True, table_spec: dict | None = None, drop: list[str] | None = None,
          categorical: list[str] | None = None, numeric: list[str] | None = None, **_) -> Splits:
    """A CSV table (header or not, .csv or .csv.gz): data_path=FILE target=COLUMN (default: the last)."""
    if not data_path:
        raise UserError("dataset=table needs data_path=FILE.csv (and target=COLUMN, default the last column)")
    columns = {"drop": list(drop or []), "categorical": list(categorical or []), "numeric": list(numeric or [])}
    return table_dataset(Path(data_path).expanduser(), target=target, test_fraction=test_fraction, seed=seed,
                         task=task, cache=cache, spec=table_spec, columns=columns)


@register_dataset("diabetes")
def diabetes(root: Path, test_fraction: float = 0.2, seed: int = 0, cache: bool = True, table_spec: dict | None = None,
             **_) -> Splits:
    """Notes 003 diabetes table: 759 rows, 8 features, 0/1 label (<data_dir>/diabetes.csv.gz)."""
    return table_dataset(root / "diabetes.csv.gz", target="", test_fraction=test_fraction, seed=seed,
                         task="classification", cache=cache, spec=table_spec)


@register_dataset("linear-xy")
def linear_xy(**_) -> Splits:
    """Notes 003 linear regression data: x = [1, 2, 3], y = [2, 4, 6]; the test point is x = 4 (y = 8)."""
    import torch

    train = TensorData(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([2.0, 4.0, 6.0]))
    return Splits(train, TensorData(torch.tensor([[4.0]]), torch.tensor([8.0])), [], "notes 003")


@register_dataset("hours-pass")
def hours_pass(**_) -> Splits:
    """Notes 003 logistic regression data: hours studied [1, 2, 3] -> pass [0, 0, 1]; evaluated on the same points."""
    import torch

    x, y = torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([0, 0, 1])
    return Splits(TensorData(x, y), TensorData(x.clone(), y.clone()), ["fail", "pass"], "notes 003")
