"""The Python API behind the CLI: train a recipe, resume a run, evaluate a checkpoint.

`fit` trains any nn.Module (the loop is trainer.py); the functions after it add recipes, registered
datasets and models, and checkpoints on top of it.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import checkpoint as ckpt
from .config import Config, from_dict, make_config, replace
from .data import Splits, build_dataset
from .data.inputs import as_tensor_data, infer_classes, validation_split
from .distributed import from_env, is_main
from .errors import UserError
from .models import build_model
from .registry import absolute_model_file, is_model_file
from .results import FitResult
from .checkpoint import first_line
from .runtime import Runtime, build, check_model_accepts, seed_everything
from .interrupt import StopFlag
from .trainer import Trainer


def fit(model: nn.Module, train_data, val_data=None, *, config: Config | None = None, resume: str | Path | None = None,
        classes: list[str] | None = None, info: dict | None = None, test_data=None, **overrides) -> FitResult:
    """Train `model` on `train_data` ((x, y) tensors or TensorData), evaluating on `val_data`.

    `train_data` may also be any torch Dataset of (input, class index), e.g. the notes' `ants + bees`;
    it then goes through a DataLoader with the config's `transforms`. Keyword overrides are config
    fields (epochs=3, lr=0.1, loss="mse", ...). `resume` is a checkpoint of this model to continue.
    `test_data`, kept apart from the validation data, is evaluated once when the run finishes.
    Returns the trained model, the run folder and the per-epoch history.
    """
    built = getattr(model, "trainlab_build", {})  # a registry model: recorded so trainlab.load rebuilds it
    cfg = config or Config(recipe="api", name=type(model).__name__.lower(), dataset="custom",
                           **{"model": "custom", **built})
    cfg = replace(cfg, **overrides) if overrides else cfg
    train = as_tensor_data(train_data, "train_data")
    val = as_tensor_data(val_data, "val_data") if val_data is not None else None
    classes = classes or infer_classes(train, cfg.loss)
    resume = Path(resume) if resume else None
    state = ckpt.load(resume, resume=True) if resume else None  # on the CPU, every entry restore() reads checked
    rt = build(cfg, model, train)
    with StopFlag() as stop:
        test = as_tensor_data(test_data, "test_data") if test_data is not None else None
        trainer = Trainer(rt, train, val, classes=classes, info=info or {}, state=state, test=test,
                          run_dir=resume.resolve().parent.parent if resume else None, stop=stop)
        return trainer.run_all()


def load_data(cfg: Config, table_spec: dict | None = None) -> Splits:
    """The run's dataset; `table_spec` (from a checkpoint) replaces fitting a table's preprocessing."""
    return build_dataset(cfg.dataset, data_dir=cfg.data_dir, data_path=cfg.data_path, target=cfg.target,
                         test_fraction=cfg.test_fraction, seed=cfg.seed, image_size=cfg.image_size, task=cfg.task,
                         mirror=cfg.mirror, download=cfg.download, cache=cfg.cache,
                         max_resident_mb=cfg.max_resident_mb, table_spec=table_spec,
                         drop=cfg.drop, categorical=cfg.categorical, numeric=cfg.numeric)


def resolve_loss(cfg: Config, classes: list[str]) -> Config:
    """loss=auto: cross_entropy for classes, mse for regression targets."""
    if cfg.loss != "auto":
        return cfg
    return replace(cfg, loss="cross_entropy" if classes else "mse")


def describe_classes(classes: list[str]) -> str:
    if not classes:
        return "regression (no classes)"
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    return f"{len(classes)} classes: {shown}"


def model_for(cfg: Config, classes: list[str], input_shape: tuple[int, ...]) -> torch.nn.Module:
    if cfg.model == "custom":
        raise UserError("this run trained an nn.Module passed to trainlab.fit, which the registry cannot rebuild: "
                        "pass it again, trainlab.load(run, model=MyNet()), or train with model=file.py:build_fn")
    index_targets = cfg.loss in ("cross_entropy", "nll")
    defaults = Config()
    options = {k: getattr(cfg, k) for k in ("head", "weights", "freeze") if getattr(cfg, k) != getattr(defaults, k)}
    return build_model(cfg.model, num_classes=len(classes) if index_targets else None, input_shape=input_shape,
                       **options)


def train_config(cfg: Config, resume: Path | None = None) -> FitResult:
    if is_model_file(cfg.model):  # recorded with its absolute path: eval and predict work from anywhere
        cfg = replace(cfg, model=absolute_model_file(cfg.model))
    dist = from_env()
    if dist.active and cfg.nproc not in (1, dist.world):
        raise UserError(f"nproc={cfg.nproc} but torchrun started {dist.world} processes")
    seed_everything(cfg.seed)
    splits = load_data(cfg)
    cfg = resolve_loss(cfg, splits.classes)
    if splits.classes and cfg.loss in ("mse", "l1"):
        raise UserError(f"loss={cfg.loss} is for regression targets, but {cfg.dataset} has classes "
                        f"({', '.join(splits.classes[:5])}...): use loss=auto or loss=cross_entropy")
    # validation carved from training (best.pt, early stopping), the test split evaluated at the end;
    # val_fraction=0 validates on the test split, as the notes do
    train, val = validation_split(splits.train, cfg.val_fraction, cfg.seed) if cfg.val_fraction else (splits.train, None)
    if not (cfg.quiet or not is_main()):  # under torchrun only rank 0 prints
        held = f"{len(val)} validation / " if val is not None else ""
        print(f"data: {cfg.dataset} from {splits.source}: {len(train)} train / {held}{len(splits.test)} test "
              f"samples, input {tuple(splits.input_shape)}, {describe_classes(splits.classes)}")
        if "table" in splits.info:
            print(f"table: {splits.info['table'].get('summary', '')}")
    model = model_for(cfg, splits.classes, splits.input_shape)
    info = {**splits.info, "data_shape": list(splits.input_shape)}  # what predict resizes new images to
    return fit(model, train, val if val is not None else splits.test, config=cfg, classes=splits.classes, info=info,
               resume=resume, test_data=splits.test if val is not None else None)


def train(recipe: str = "mnist-cnn", **overrides) -> FitResult:
    """Train a built-in recipe or a YAML file, with config overrides (epochs=3, lr=0.1, ...)."""
    return train_config(make_config(recipe, overrides))


# Keys a resume may change: how long and where to run, what to log. Anything else (model, data,
# loss, optimizer, batch size, ...) would make the run's record disagree with its checkpoint.
RESUMABLE = {"epochs", "max_steps", "log_every", "save_every", "tensorboard", "plots", "device", "threads",
             "workers", "data_dir", "eval_batch_size", "mirror", "download", "cache", "amp", "deterministic",
             "quiet", "patience", "min_delta", "save_every_steps", "keep_last", "tta", "graph"}


def resume(run: str, **overrides) -> FitResult:
    """Continue a run from its last checkpoint; max_steps is reset unless given again."""
    path = ckpt.resolve(run, which="last")
    values = {**ckpt.load(path, resume=True)["config"], "max_steps": 0}  # every entry resume needs, checked
    if from_env().active:
        overrides = {"nproc": from_env().world, **overrides}  # the processes torchrun started
    before, after = from_dict(values), from_dict({**values, **overrides})
    same_global_batch = before.batch_size * before.nproc == after.batch_size * after.nproc
    for key in overrides:
        if key in ("nproc", "batch_size") and same_global_batch:
            continue  # e.g. a 1-process run at batch 64 resumed on 2 processes at batch 32 each
        if key not in RESUMABLE and getattr(before, key) != getattr(after, key):
            raise UserError(f"'{key}' cannot change when resuming (the run has {key}={getattr(before, key)!r}); "
                            f"start a new run instead, e.g. trainlab train {before.recipe} {key}=...")
    return train_config(after, resume=path)


def load_checkpoint_model(state: dict, cfg: Config, path: Path,
                          model: torch.nn.Module | None = None) -> torch.nn.Module:
    """The run's model (rebuilt, or `model` as given) with the checkpoint's weights, on the CPU: the
    averaged weights of a run trained with ema (what its validation used), else the live ones."""
    model = model or model_for(cfg, state.get("classes") or [], tuple(state.get("input_shape") or ()))
    try:
        model.load_state_dict(state["ema"] if "ema" in state else state["model"])
    except RuntimeError as e:
        raise UserError(f"{path}: the weights do not match model '{cfg.model}': {first_line(e)}") from e
    return model


def open_run(run: str, best: bool = False, **overrides) -> tuple[Path, dict, Config]:
    """(checkpoint path, its state on the CPU, its config with `overrides`) for a run or checkpoint."""
    path = ckpt.resolve(run, which="best" if best else "last")
    state = ckpt.load(path)
    return path, state, from_dict({**state["config"], **overrides})


def evaluate_checkpoint(run: str, best: bool = False, **overrides) -> tuple[dict, Runtime, object, Config]:
    """(result, runtime, test batches, config) for a checkpoint evaluated on its test split, with the
    runtime training used (device, precision, memory format, criterion with label smoothing)."""
    path, state, cfg = open_run(run, best, **overrides)
    splits = load_data(cfg, table_spec=(state.get("info") or {}).get("table"))  # the run's own preprocessing
    rt = build(cfg, load_checkpoint_model(state, cfg, path), splits.test)
    batches = rt.eval_batches(splits.test)
    check_model_accepts(rt, [batches.sample(2)], splits.classes)
    result = rt.evaluate(batches, len(splits.classes), (splits.info.get("table") or {}).get("target_scale"))
    result.update(checkpoint=str(path), epoch=state["epoch"], step=state["step"], dataset=cfg.dataset,
                  classes=splits.classes)
    return result, rt, batches, cfg


def evaluate_run(run: str, best: bool = False, **overrides) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix of a checkpoint on its test split."""
    return evaluate_checkpoint(run, best, **overrides)[0]


@torch.no_grad()
def report_run(run: str, best: bool = False, **overrides) -> tuple[dict, list[Path]]:
    """Evaluate a run's checkpoint and (re)write its plots/ folder; returns (result, plot paths)."""
    from .report import prediction_sample, write_plots

    result, rt, batches, cfg = evaluate_checkpoint(run, best, **overrides)
    sample = prediction_sample(rt, batches)
    ckpt_path = Path(result["checkpoint"])
    # plots/ of the run folder, or <name>-report/ beside a checkpoint file kept elsewhere
    in_run = ckpt_path.parent.name == "checkpoints" and (ckpt_path.parent.parent / "config.yaml").exists()
    out = ckpt_path.parent.parent if in_run else ckpt_path.with_name(f"{ckpt_path.stem}-report")
    return result, write_plots(out, result, result["classes"], sample, *rt.normalization())
