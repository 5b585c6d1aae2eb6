"""The one typed run configuration.

A run is described by `Config`. A recipe is a YAML file that lists only the fields it overrides;
`key=value` words on the command line override again and are converted to each field's type.
Unknown keys and bad values are a `UserError` naming the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from .errors import UserError
from .runs import check_name


@dataclass
class Config:
    recipe: str = "mnist-cnn"
    name: str = ""  # run folder name under out_dir; default: the recipe name (made unique)
    model: str = "mnist-cnn"
    head: str = "replace"  # torchvision backbones: replace the last Linear, or append one (notes 000)
    weights: str = ""  # torchvision backbones: a local state_dict file (nothing can be downloaded here)
    freeze: bool = False  # torchvision backbones: train the new head only
    dataset: str = "mnist-sample"
    data_dir: str = ""  # default: $TRAINLAB_DATA, else ~/.cache/trainlab-data
    data_path: str = ""  # a user's own folder of images or CSV file
    target: str = ""  # CSV target column (default: the last one)
    val_fraction: float = 0.2  # held-out share for datasets without a test split
    task: str = "auto"  # tables: classification or regression, inferred from the target column
    image_size: int = 0  # image folders: shorter side resized to this, then centre-cropped (0: dataset default)
    download: bool = True  # fetch official files (checksummed) that are missing from data_dir
    mirror: str = ""  # a mirror base URL tried first (also $TRAINLAB_MIRROR)
    cache: bool = True  # keep decoded image tensors on disk ($TRAINLAB_CACHE, ~/.cache/trainlab/tensors)
    max_resident_mb: int = 4096  # larger image sets are decoded per sample by DataLoader workers
    workers: int = -1  # DataLoader workers on the fallback path; -1: up to 2
    mean: list[float] = field(default_factory=list)  # per-channel Normalize; empty: none
    std: list[float] = field(default_factory=list)
    transforms: list[str] = field(default_factory=list)  # torchvision names, e.g. "RandomCrop(32, padding=4)"
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1000
    drop_last: bool = False
    loss: str = "cross_entropy"
    reduction: str = "mean"
    label_smoothing: float = 0.0
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    scheduler: str = "none"
    step_size: int = 5  # StepLR, in epochs
    gamma: float = 0.1  # StepLR / MultiStepLR decay
    milestones: list[int] = field(default_factory=list)  # MultiStepLR, in epochs
    max_lr: float = 0.0  # OneCycleLR peak; 0: use lr
    grad_accum: int = 1
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0: torch's default (one per core); at most MAX_THREADS
    channels_last: bool = True  # NHWC memory format for models with convolutions (faster on CPU and GPU)
    amp: str = "none"  # autocast: bf16 (GPU, or a CPU with avx512_bf16/AMX), fp16 (GPU), auto = bf16 where fast
    seed: int = 0  # 0 .. 2**63 - 1 (torch generators take a signed 64-bit seed)
    out_dir: str = "runs"
    max_steps: int = 0  # stop after this many optimizer steps (0: no limit); not kept on resume
    log_every: int = 50  # optimizer steps between host syncs: progress bar, NaN check, TensorBoard loss point
    save_every: int = 1  # epochs between last.pt writes and printed epoch lines (the last epoch always)
    tensorboard: bool = True
    plots: bool = True  # plots/*.png at the end of the run


CHOICES: dict[str, tuple[str, ...]] = {
    "loss": ("auto", "cross_entropy", "nll", "bce", "bce_logits", "mse", "l1"),
    "task": ("auto", "classification", "regression"),
    "head": ("replace", "append"),
    "amp": ("none", "bf16", "fp16", "auto"),
    "reduction": ("mean", "sum"),
    "optimizer": ("sgd", "adam", "adamw"),
    "scheduler": ("none", "step", "multistep", "cosine", "onecycle"),
    "device": ("auto", "cpu", "cuda"),
}
NON_NEGATIVE = ("threads", "image_size", "max_steps", "lr", "momentum", "weight_decay", "max_lr", "seed")
POSITIVE = ("epochs", "batch_size", "eval_batch_size", "grad_accum", "log_every", "step_size", "save_every")
# torch.set_num_threads(100000) crashes the process (segfault); 1024 is far above any core count
# trainlab can use and still safe. A fixed bound, not one per machine, so saved configs load anywhere.
MAX_THREADS = 1024
MAX_SEED = 2**63 - 1
FIELDS = {f.name: f for f in dataclasses.fields(Config)}
TYPES = typing.get_type_hints(Config)


def recipe_dir() -> Path:
    return Path(str(resources.files("trainlab") / "recipes"))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def _unknown_key(key: str) -> UserError:
    near = [f for f in FIELDS if key.startswith(f + "_") or f.startswith(key)] or \
        difflib.get_close_matches(key, FIELDS, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return UserError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(FIELDS)}")


def convert(key: str, value: object) -> object:
    """Convert a YAML or command-line value to the type of field `key`, or raise UserError."""
    if not isinstance(key, str):
        raise UserError(f"config keys must be names, got {key!r}")
    if key not in FIELDS:
        raise _unknown_key(key)
    kind = TYPES[key]
    if isinstance(value, str) and kind is not str:
        try:
            value = yaml.safe_load(value) if value.strip() else []
        except yaml.YAMLError:
            raise UserError(f"bad value {value!r} for '{key}': expected {_type_name(kind)}") from None
    try:
        out = _as_type(kind, value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"bad value {value!r} for '{key}': expected {_type_name(kind)}") from None
    _check_range(key, out)
    return out


def _check_range(key: str, out: object) -> None:
    """The allowed range of field `key`; a value outside is a UserError naming the key."""
    def bad(why: str) -> UserError:
        return UserError(f"bad value {out!r} for '{key}': {why}")

    if any(isinstance(v, float) and not math.isfinite(v) for v in (out if isinstance(out, list) else [out])):
        raise bad("must be a finite number")
    if key in ("name", "recipe") and (out or key == "recipe"):
        check_name(out, key)
    if key in CHOICES and out not in CHOICES[key]:
        raise bad(f"allowed values are {', '.join(CHOICES[key])}")
    if key in POSITIVE and out < 1:
        raise bad("must be at least 1")
    if key in NON_NEGATIVE and out < 0:
        raise bad("must be 0 or more")
    if key == "threads" and out > MAX_THREADS:
        raise bad(f"at most {MAX_THREADS}")
    if key == "seed" and out > MAX_SEED:
        raise bad("at most 2**63 - 1")
    if key == "label_smoothing" and not 0.0 <= out < 1.0:
        raise bad("must be in [0, 1)")
    if key == "val_fraction" and not 0.0 < out < 1.0:
        raise bad("must be between 0 and 1")
    if key == "betas" and (len(out) != 2 or not all(0.0 <= b < 1.0 for b in out)):
        raise bad("two numbers in [0, 1), e.g. [0.9, 0.999]")
    if key == "std" and any(v <= 0 for v in out):
        raise bad("every value must be positive")


def _as_type(kind: object, value: object) -> object:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(value)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(value)
        return float(value)  # also '1e-4', which YAML leaves a string
    if kind is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError(value)
        return str(value)
    item = typing.get_args(kind)[0]  # list[X]
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    return [_as_type(item, v) for v in value]


def _type_name(kind: object) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def load_recipe(name_or_path: str) -> dict:
    """The overrides a recipe lists: a built-in recipe name or a path to a YAML file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        path = recipe_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise UserError(f"unknown recipe '{name_or_path}'; available: {', '.join(recipe_names())}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"recipe file not found: {path}") from None
    except yaml.YAMLError as e:
        raise UserError(f"cannot parse recipe {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"recipe {path} must be a mapping of config keys to values")
    data.setdefault("recipe", path.stem)
    return data


def parse_overrides(words: list[str]) -> dict:
    """['lr=0.1', 'epochs=3'] -> {'lr': '0.1', 'epochs': '3'} (values converted later)."""
    out = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UserError(f"expected key=value, got {word!r}")
        if key.strip() not in FIELDS:  # now, before a key could clash with an API argument (run, best)
            raise _unknown_key(key.strip())
        out[key.strip()] = value
    return out


def make_config(recipe: str | None = None, overrides: dict | None = None) -> Config:
    """Defaults <- recipe file <- overrides, each value checked and converted."""
    values = load_recipe(recipe) if recipe else {}
    values.update(overrides or {})
    return from_dict(values)


def from_dict(values: dict) -> Config:
    return Config(**{k: convert(k, v) for k, v in values.items()})


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def replace(cfg: Config, **changes: object) -> Config:
    return dataclasses.replace(cfg, **{k: convert(k, v) for k, v in changes.items()})
