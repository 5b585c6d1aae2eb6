"""What `fit()` accepts as data: (x, y) tensors, TensorData, TensorDataset or any torch Dataset;
and the class names and labels such data declares."""
from __future__ import annotations

import torch

from ..errors import UserError
from . import TensorData


def as_tensor_data(data: object, what: str):
    """TensorData for tensors (the fast path); any other torch Dataset is passed through."""
    if isinstance(data, TensorData):
        return data
    if isinstance(data, torch.utils.data.TensorDataset):
        return TensorData(*data.tensors[:2])
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        if len(data[0]) != len(data[1]):
            raise UserError(f"{what}: x has {len(data[0])} rows but y has {len(data[1])}")
        return TensorData(data[0], data[1])
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        return data
    raise UserError(f"{what}: expected an (x, y) pair of tensors, TensorData or a torch Dataset of (input, label), "
                    f"got {type(data).__name__}")


def dataset_classes(data) -> list[str] | None:
    """Class names a dataset declares (`.classes`, also inside a ConcatDataset), else None."""
    if isinstance(data, torch.utils.data.ConcatDataset):
        return dataset_classes(data.datasets[0])
    classes = getattr(data, "classes", None)
    return list(classes) if classes else None


def dataset_labels(data) -> torch.Tensor:
    if isinstance(data, TensorData):
        return data.y
    if isinstance(getattr(data, "labels", None), list):  # e.g. FolderFiles: no image decoded
        return torch.as_tensor(data.labels)
    return torch.as_tensor([int(data[i][1]) for i in range(len(data))])


def validation_split(train, fraction: float, seed: int):
    """(train, validation) carved from the training data: seeded, stratified by class (one stratum
    for regression targets). Tensors stay tensors; other Datasets become torch Subsets."""
    from . import stratified_split

    keep, held = stratified_split(dataset_labels(train), fraction, seed)
    if not len(held) or not len(keep):
        raise UserError(f"{len(train)} training samples are too few to hold out val_fraction={fraction}; "
                        "use val_fraction=0 to validate on the test split")
    if isinstance(train, TensorData):
        return TensorData(train.x[keep], train.y[keep]), TensorData(train.x[held], train.y[held])
    return torch.utils.data.Subset(train, keep.tolist()), torch.utils.data.Subset(train, held.tolist())


def infer_classes(data, loss: str) -> list[str]:
    """Declared class names, else 0..max label for index losses, ['0', '1'] for BCE, [] for regression."""
    classes = dataset_classes(data)
    if classes:
        return classes
    if loss in ("cross_entropy", "nll"):
        labels = dataset_labels(data)
        if labels.is_floating_point():
            raise UserError(f"loss={loss} needs integer class labels, but the targets are {labels.dtype} "
                            "(a regression): use loss=mse or loss=l1")
        return [str(i) for i in range(int(labels.max()) + 1)]
    if loss in ("bce", "bce_logits"):
        return ["0", "1"]
    return []
