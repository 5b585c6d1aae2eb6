"""Transfer learning from the notes (000): torchvision VGG16 and ResNet18 with a swapped head.

Two ways to change the head, as in the notes:

- head="replace": `vgg16.classifier[6] = nn.Linear(4096, num_classes)` (ResNet: `fc = Linear(512, n)`);
- head="append":  `vgg16.classifier.add_module('add_linear', nn.Linear(1000, num_classes))`
  (ResNet: `fc = Sequential(original fc, Linear(1000, n))`).

trainlab does not download pretrained weights: `weights` is the path of a local file holding the
torchvision backbone's state_dict (e.g. vgg16-397923af.pth, from torchvision's model page). It is
loaded into the original 1000-class architecture before the head is swapped. Both backbones end in an adaptive
average pool, so any input of at least 32x32 (CIFAR-10 included) works.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError
from .registry import register_model

if TYPE_CHECKING:  # torch is imported by the builders, so that listing models stays fast
    from torch import nn

HEADS = ("replace", "append")
MIN_SIDE = 32  # VGG16's five 2x2 max-pools need at least 32 pixels per side


def _check_args(name: str, num_classes: int, head: str, input_shape: tuple[int, ...]) -> None:
    """Fail early, before the slow build, on arguments the backbones cannot take."""
    if head not in HEADS:
        raise UserError(f"{name}: unknown head '{head}'; choose one of: {', '.join(HEADS)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise UserError(f"{name}: num_classes must be a positive integer, got {num_classes!r}")
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[0] != 3 or min(shape[1:]) < MIN_SIDE:
        raise UserError(f"{name}: needs RGB images of shape (3, H, W) with H, W >= {MIN_SIDE}, "
                        f"got {shape}; convert/resize the images (e.g. Grayscale(3), Resize(224))")


def _read_state_dict(path: str) -> dict[str, Any]:
    """The backbone's state_dict from a local file: bare, or under a "state_dict"/"model" key."""
    import torch

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"weights file not found: {file}")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated download or a pickled full model: say which file
        raise UserError(f"cannot read weights file {file}: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise UserError(f"weights file {file} does not hold a state_dict (a dict of tensors)")
    # A model saved from nn.DataParallel prefixes every key with "module."
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _load_backbone(model: nn.Module, state: dict[str, Any], path: str) -> None:
    """Load strictly, naming the first key that is missing, unexpected or of another shape."""
    own = model.state_dict()
    for key, tensor in own.items():
        if key not in state and key.endswith("num_batches_tracked"):
            continue  # older files (torchvision's own included) lack this BatchNorm counter
        if key not in state:
            raise UserError(f"weights file {path} does not fit: key '{key}' is missing")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise UserError(f"weights file {path} does not fit: key '{key}' has shape "
                            f"{tuple(state[key].shape)}, the model expects {tuple(tensor.shape)}")
    extra = [key for key in state if key not in own]
    if extra:
        raise UserError(f"weights file {path} does not fit: unexpected key '{extra[0]}'")
    model.load_state_dict(state, strict=False)  # checked above; lets the counters keep their default


def _backbone(name: str, weights: str) -> nn.Module:
    """The original 1000-class torchvision model, from `weights` or from random init."""
    import torchvision

    state = _read_state_dict(weights) if weights else None  # a bad path fails before the slow build
    model = getattr(torchvision.models, name)(weights=None)
    if state is None:
        print(f"{name}: backbone starts from random init because no weights file was given "
              f"(trainlab does not download weights; pass weights=PATH to a local ImageNet state_dict file)")
    else:
        _load_backbone(model, state, weights)
    return model


def _freeze_all_but(model: nn.Module, head: nn.Module, name: str, weights: str) -> None:
    """Train only the new head: the usual first stage of fine-tuning."""
    if not weights:  # a frozen random backbone gives the head random features to learn from
        print(f"warning: {name}: freeze=true without weights=PATH trains only the head on a randomly initialised, "
              "frozen backbone; pass weights=PATH to an ImageNet state_dict file, or drop freeze=true",
              file=sys.stderr)
    model.requires_grad_(False)
    head.requires_grad_(True)


@register_model("vgg16", input_shape=(3, 224, 224))
def vgg16(num_classes: int = 10, head: str = "replace", weights: str = "", freeze: bool = False,
          input_shape: tuple[int, ...] = (3, 224, 224)) -> nn.Module:
    """Notes 000 torchvision VGG16 with a new head: classifier[6] replaced, or 'add_linear' appended."""
    from torch import nn

    _check_args("vgg16", num_classes, head, input_shape)
    model = _backbone("vgg16", weights)
    new = nn.Linear(1000 if head == "append" else 4096, num_classes)
    if head == "append":
        model.classifier.add_module("add_linear", new)
    else:
        model.classifier[6] = new
    if freeze:
        _freeze_all_but(model, new, "vgg16", weights)
    return model


@register_model("resnet18", input_shape=(3, 224, 224))
def resnet18(num_classes: int = 10, head: str = "replace", weights: str = "", freeze: bool = False,
             input_shape: tuple[int, ...] = (3, 224, 224)) -> nn.Module:
    """torchvision ResNet18 with a new head: fc replaced, or Linear(1000, n) appended after fc."""
    from torch import nn

    _check_args("resnet18", num_classes, head, input_shape)
    model = _backbone("resnet18", weights)
    new = nn.Linear(1000 if head == "append" else 512, num_classes)
    model.fc = nn.Sequential(model.fc, new) if head == "append" else new
    if freeze:
        _freeze_all_but(model, new, "resnet18", weights)
    return model
