"""The model registry: `@register_model(name, input_shape=...)` and `build_model(name, ...)`.

Builders are plain functions taking plain arguments (`num_classes`, ...) and returning an
`nn.Module`. The built-in ones live in models.py (the notes' models) and transfer.py (torchvision
backbones); both import this module, and it loads them only when a model is looked up, so there
is no import cycle and listing the registry does not import torch.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .errors import UserError

if TYPE_CHECKING:  # torch is imported by the builders, so that listing models stays fast
    from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[..., nn.Module]
    input_shape: tuple[int, ...]
    doc: str


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, input_shape: tuple[int, ...]):
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        MODELS[name] = ModelEntry(name, fn, tuple(input_shape), doc)
        return fn

    return wrap


def get_model_entry(name: str) -> ModelEntry:
    load_builtin_models()
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; available: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, num_classes: int | None = None, input_shape: tuple[int, ...] | None = None,
                **options) -> nn.Module:
    """Build a registered model. input_shape reaches builders that take it (data-sized models);
    options (head=, weights=, freeze=) must be taken by the builder unless left at a false value."""
    entry = get_model_entry(name)
    params = inspect.signature(entry.build).parameters
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    if input_shape and "input_shape" in params:
        kwargs["input_shape"] = tuple(input_shape)
    for key, value in options.items():
        if key in params:
            kwargs[key] = value
        elif value:
            raise UserError(f"model '{name}' does not take '{key}' (only vgg16 and resnet18 take head, weights, freeze)")
    return entry.build(**kwargs)


def load_builtin_models() -> dict[str, ModelEntry]:
    """Register the built-in builders (importing their modules once) and return the registry."""
    for module in ("models", "transfer"):
        importlib.import_module(f".{module}", __package__)
    return MODELS
