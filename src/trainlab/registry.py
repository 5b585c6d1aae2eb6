"""The model registry: `@register_model(name, input_shape=...)` and `build_model(name, ...)`.

Builders are plain functions taking plain arguments (`num_classes`, ...) and returning an
`nn.Module`. The built-in ones live in models.py (the notes' models) and transfer.py (torchvision
backbones); both import this module, and it loads them only when a model is looked up, so there
is no import cycle and listing the registry does not import torch.

A user's own model is `model=path/to/file.py:build_fn`: a plain builder function in the user's
file, called like the registry's builders (`num_classes`, and `input_shape` if it takes it). The
file is user code run on purpose (it is the only code trainlab runs that is not its own); the
run records the file's absolute path, so eval, predict, report and resume rebuild the same model.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
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
    if is_model_file(name):
        return model_file_entry(name)
    load_builtin_models()
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; available: {', '.join(sorted(MODELS))}, or your own builder "
                        "function as model=path/to/file.py:build_fn")
    return MODELS[name]


def is_model_file(name: str) -> bool:
    """`path/to/file.py:function` names a builder in a user's file."""
    path, sep, fn = name.rpartition(":")
    return bool(sep) and path.endswith(".py") and fn.isidentifier()


def absolute_model_file(name: str) -> str:
    """The spec with the file's absolute path, so the run can be evaluated from any folder."""
    path, _, fn = name.rpartition(":")
    return f"{Path(path).expanduser().resolve()}:{fn}"


def model_file_entry(name: str) -> ModelEntry:
    """Import the user's file (once per path) and return its builder as a registry entry."""
    path, _, fn_name = name.rpartition(":")
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise UserError(f"model file not found: {file} (from model={name})")
    key = f"trainlab_user_model_{abs(hash(str(file)))}"  # one module per file, imported once
    module = sys.modules.get(key)
    if module is None:
        spec = importlib.util.spec_from_file_location(key, file)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # the user's code failed: say where, keep the real error chained
            raise UserError(f"importing model file {file} failed: {type(e).__name__}: {e}") from e
        sys.modules[key] = module
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise UserError(f"{file} has no function '{fn_name}'; it defines: {', '.join(found) or 'nothing callable'}")
    doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
    return ModelEntry(name, fn, (), doc)


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
    try:
        model = entry.build(**kwargs)
    except Exception as e:
        if not is_model_file(name):
            raise
        raise UserError(f"model builder {name} failed: {type(e).__name__}: {e}") from e
    model.trainlab_build = {"model": name, **options}  # so fit() records what rebuilds it
    return model


def load_builtin_models() -> dict[str, ModelEntry]:
    """Register the built-in builders (importing their modules once) and return the registry."""
    for module in ("models", "transfer"):
        importlib.import_module(f".{module}", __package__)
    return MODELS
