"""The one typed run configuration.

A run is described by `Config`. A recipe is a YAML file that lists only the fields it overrides;
`key=value` words on the command line override again and are converted to each field's type.
Unknown keys and bad values are a `UserError` naming the key and what is allowed. Each field
carries its one-line meaning in `metadata["help"]`, the only place it is written down.
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


def _key(default: object, meaning: str) -> typing.Any:
    """A Config field with its one-line meaning; `trainlab train --help` prints it (confighelp.py)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": meaning})
    return field(default=default, metadata={"help": meaning})


@dataclass
class Config:
    recipe: str = _key("mnist-cnn", "recipe the run started from (set by the recipe name or file)")
    name: str = _key("", "run folder name under out_dir; default: the recipe name (made unique)")
    model: str = _key("mnist-cnn", "registered model (trainlab ls)")
    head: str = _key("replace", "torchvision backbones: replace the last Linear, or append one (notes 000)")
    weights: str = _key("", "torchvision backbones: path of a local ImageNet state_dict file (empty: random init)")
    freeze: bool = _key(False, "torchvision backbones: train the new head only")
    whiten: bool = _key(False, "first Conv2d set from the training images' patch covariance (whitening) and frozen")
    dataset: str = _key("mnist-sample", "registered dataset (trainlab ls)")
    data_dir: str = _key("", "dataset folder; default: $TRAINLAB_DATA, else ~/.cache/trainlab-data")
    data_path: str = _key("", "a user's own folder of images or CSV file")
    target: str = _key("", "CSV target column (default: the last one)")
    drop: list[str] = _key([], "tables: columns to leave out (names)")
    categorical: list[str] = _key([], "tables: columns to one-hot whatever inference says")
    numeric: list[str] = _key([], "tables: columns to read as numbers (a text cell is an error)")
    val_fraction: float = _key(0.1, "share of the training data held out (seeded, stratified) to validate on: best.pt, "
                                     "early stopping, metrics.csv's val_*; 0: validate on the test split (the notes)")
    test_fraction: float = _key(0.2, "test share held out of datasets without a test split (one image folder, tables)")
    task: str = _key("auto", "tables: classification or regression (auto: inferred from the target column)")
    image_size: int = _key(0, "image folders: shorter side resized to this, then centre-cropped (0: dataset default)")
    download: bool = _key(True, "fetch official files (checksummed) that are missing from data_dir")
    mirror: str = _key("", "a mirror base URL tried first (also $TRAINLAB_MIRROR)")
    cache: bool = _key(True, "keep decoded image tensors on disk ($TRAINLAB_CACHE, ~/.cache/trainlab/tensors)")
    max_resident_mb: int = _key(4096, "larger image sets are decoded per sample by DataLoader workers")
    workers: int = _key(-1, "DataLoader workers on the fallback path; -1: up to 2")
    mean: list[float] = _key([], "per-channel Normalize mean; empty: none")
    std: list[float] = _key([], "per-channel Normalize std (with mean)")
    transforms: list[str] = _key([], 'torchvision transform names, e.g. ["RandomCrop(32, padding=4)"]')
    epochs: int = _key(10, "passes over the training data")
    batch_size: int = _key(64, "training samples per batch")
    eval_batch_size: int = _key(1000, "samples per batch when evaluating and predicting")
    drop_last: bool = _key(False, "skip the last incomplete training batch of each epoch")
    loss: str = _key("cross_entropy", "loss function (auto: cross_entropy for classes, mse for regression)")
    reduction: str = _key("mean", "how the loss combines a batch's samples")
    label_smoothing: float = _key(0.0, "cross_entropy label smoothing, in [0, 1)")
    optimizer: str = _key("sgd", "optimizer")
    lr: float = _key(0.01, "learning rate")
    momentum: float = _key(0.0, "SGD momentum")
    nesterov: bool = _key(False, "SGD Nesterov momentum")
    weight_decay: float = _key(0.0, "L2 penalty (decoupled for adamw)")
    betas: list[float] = _key([0.9, 0.999], "Adam/AdamW moment decay rates")
    bias_lr_scale: float = _key(1.0, "lr x this for biases and norm-layer parameters, weight_decay / this (> 0)")
    scheduler: str = _key("none", "learning-rate schedule: step/multistep/plateau per epoch, cosine/onecycle/linear "
                                  "per step")
    step_size: int = _key(5, "StepLR: epochs between decays")
    gamma: float = _key(0.1, "StepLR / MultiStepLR decay factor")
    milestones: list[int] = _key([], "MultiStepLR: epochs at which lr decays")
    max_lr: float = _key(0.0, "OneCycleLR peak; 0: use lr")
    start_factor: float = _key(0.0, "scheduler=linear: lr x this at the first step, rising linearly to lr at peak_at")
    peak_at: float = _key(0.0, "scheduler=linear: where lr peaks, as a share of the run's steps, in [0, 1]")
    end_factor: float = _key(0.0, "scheduler=linear: lr x this at the end of the run, falling linearly from the peak")
    grad_accum: int = _key(1, "batches per optimizer step (the update equals one batch that many times larger)")
    device: str = _key("auto", "auto: CUDA if present, else CPU")
    nproc: int = _key(1, "processes (GPUs) to train on, started through torchrun; batch_size is per process")
    threads: int = _key(0, "torch intra-op threads on the CPU (at most 1024); 0: auto (free cores, fewer on a busy machine)")
    channels_last: bool = _key(True, "NHWC memory format for models with convolutions (faster on CPU and GPU)")
    graph: str = _key("auto", "CUDA: capture each whole training step in one CUDA graph and replay it (auto: where the "
                               "step can be captured, else eager steps, saying why; true: capture or fail)")
    deterministic: bool = _key(False, "deterministic kernels (cuDNN, cuBLAS): bitwise-exact resume on a GPU")
    amp: str = _key("none", "autocast: bf16 (GPU, or a CPU with avx512_bf16/AMX), fp16 (GPU), auto = bf16 where fast")
    seed: int = _key(0, "seed of every random number generator (data order, init, augmentation); 0 .. 2**63 - 1")
    out_dir: str = _key("runs", "folder that holds the run folders")
    max_steps: int = _key(0, "stop after this many optimizer steps (0: no limit); not kept on resume")
    log_every: int = _key(50, "optimizer steps between host syncs: progress bar, NaN check, TensorBoard loss point")
    save_every: int = _key(1, "epochs between last.pt writes and printed epoch lines (the last epoch always)")
    tensorboard: bool = _key(True, "write TensorBoard events in the run folder")
    plots: bool = _key(True, "plots/*.png at the end of the run")
    quiet: bool = _key(False, "no progress bar, data or epoch lines; errors, warnings and the final line still print")
    # training controls (what Lightning, Keras and fastai users expect)
    patience: int = _key(0, "early stopping: epochs without a better validation metric (by > min_delta); 0: off")
    min_delta: float = _key(0.0, "early stopping: the smallest change that counts as better")
    clip_grad_norm: float = _key(0.0, "clip the gradients' total L2 norm to this before each step; 0: off")
    warmup_steps: int = _key(0, "linear learning-rate warm-up over this many optimizer steps, with any scheduler")
    lr_patience: int = _key(2, "scheduler=plateau: epochs without improvement before lr is multiplied by gamma")
    save_every_steps: int = _key(0, "also write last.pt every N optimizer steps (mid-epoch, resumable); 0: off")
    keep_last: int = _key(0, "keep the newest N checkpoints as checkpoints/step-NNNNNNN.pt; 0: only last/best")
    # evaluation: what validation, the final test, eval, report and predict run (tta.py, averaging.py)
    ema: float = _key(0.0, "exponential moving average of the weights, decay per optimizer step in [0, 1): "
                           "validation, best.pt, eval and predict use the average; 0: off")
    tta: str = _key("none", "test-time augmentation of image inputs in every evaluation: flip (mirror), "
                            "translate (mirror and one-pixel shifts)")

CHOICES: dict[str, tuple[str, ...]] = {
    "loss": ("auto", "cross_entropy", "nll", "bce", "bce_logits", "mse", "l1"),
    "task": ("auto", "classification", "regression"),
    "head": ("replace", "append"),
    "amp": ("none", "bf16", "fp16", "auto"),
    "reduction": ("mean", "sum"),
    "optimizer": ("sgd", "adam", "adamw"),
    "scheduler": ("none", "step", "multistep", "plateau", "cosine", "onecycle", "linear"),
    "device": ("auto", "cpu", "cuda"),
    "graph": ("auto", "true", "false"),
    "tta": ("none", "flip", "translate"),
}
NON_NEGATIVE = ("threads", "image_size", "max_steps", "lr", "momentum", "weight_decay", "max_lr", "seed", "patience",
                "min_delta", "clip_grad_norm", "warmup_steps", "lr_patience", "save_every_steps", "keep_last",
                "start_factor", "end_factor")
POSITIVE = ("nproc", "epochs", "batch_size", "eval_batch_size", "grad_accum", "log_every", "step_size", "save_every")
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


# Names other tools use for a key, suggested (never silently accepted) in the unknown-key error.
ALIASES = {
    "learning_rate": "lr", "lr_rate": "lr", "learningrate": "lr", "num_epochs": "epochs", "n_epochs": "epochs",
    "epoch": "epochs", "max_epochs": "epochs", "batchsize": "batch_size", "bs": "batch_size", "batch": "batch_size",
    "wd": "weight_decay", "optim": "optimizer", "opt": "optimizer", "sched": "scheduler", "lr_scheduler": "scheduler",
    "num_workers": "workers", "num_threads": "threads", "data": "dataset", "output_dir": "out_dir", "out": "out_dir",
    "smoothing": "label_smoothing", "accumulate": "grad_accum", "grad_accumulation": "grad_accum",
    "gradient_accumulation_steps": "grad_accum", "precision": "amp", "mixed_precision": "amp", "arch": "model",
    "pretrained": "weights", "steps": "max_steps", "run_name": "name", "transform": "transforms",
}


def suggest(word: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest of `choices`, or ''."""
    near = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{near[0]}'?)" if near else ""


def _unknown_key(key: str) -> UserError:
    near = ALIASES.get(key.lower()) or next((f for f in FIELDS if key.startswith(f + "_") or f.startswith(key)), None)
    hint = f" (did you mean '{near}'?)" if near else suggest(key, list(FIELDS))
    return UserError(f"unknown config key {key!r}{hint}; `trainlab train --help` lists every key")


def convert(key: str, value: object) -> object:
    """Convert a YAML or command-line value to the type of field `key`, or raise UserError."""
    if not isinstance(key, str):
        raise UserError(f"config keys must be names, got {key!r}")
    if key not in FIELDS:
        raise _unknown_key(key)
    kind = TYPES[key]
    if key == "graph" and isinstance(value, bool):  # YAML reads `graph: true` as a boolean
        value = "true" if value else "false"
    if isinstance(value, str) and kind is not str:
        try:
            value = yaml.safe_load(value) if value.strip() else []
        except yaml.YAMLError:
            raise UserError(f"bad value {value!r} for '{key}': expected {type_name(kind)}") from None
    try:
        out = _as_type(kind, value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"bad value {value!r} for '{key}': expected {type_name(kind)}") from None
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
    if key == "bias_lr_scale" and out <= 0:
        raise bad("must be positive (1: the same lr as the other parameters)")
    if key == "peak_at" and not 0.0 <= out <= 1.0:
        raise bad("must be in [0, 1] (a share of the run's steps)")
    if key in ("label_smoothing", "ema") and not 0.0 <= out < 1.0:
        raise bad("must be in [0, 1)")
    if key == "test_fraction" and not 0.0 < out < 1.0:
        raise bad("must be between 0 and 1")
    if key == "val_fraction" and not 0.0 <= out < 1.0:
        raise bad("must be 0 (validate on the test split) or a share below 1")
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


def type_name(kind: object) -> str:
    """int, float, list[float], ... as written in the dataclass."""
    return str(kind).replace("typing.", "") if typing.get_args(kind) else getattr(kind, "__name__", str(kind))


def load_recipe(name_or_path: str) -> dict:
    """The overrides a recipe lists: a built-in recipe name or a path to a YAML file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        path = recipe_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            names = recipe_names()
            raise UserError(f"unknown recipe '{name_or_path}'{suggest(name_or_path, names)}; "
                            f"available: {', '.join(names)}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"recipe file not found: {path}") from None
    except yaml.YAMLError as e:
        raise UserError(f"cannot parse recipe {path}: {str(e).splitlines()[0]}") from e
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
