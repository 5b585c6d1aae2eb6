"""The Python API behind the CLI: train a recipe, resume a run, evaluate a checkpoint.

`trainlab.fit` (trainer.py) trains any nn.Module; the functions here add recipes, registered
datasets and models, and checkpoints on top of it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import checkpoint as ckpt
from .config import Config, from_dict, make_config, replace
from .data import Splits, build_dataset
from .data.plan import eval_batches
from .engine import evaluate, pick_device, seed_everything
from .errors import UserError
from .models import build_model
from .optim import Criterion
from .trainer import FitResult, check_model_accepts, fit


def load_data(cfg: Config, table_spec: dict | None = None) -> Splits:
    """The run's dataset; `table_spec` (from a checkpoint) replaces fitting a table's preprocessing."""
    return build_dataset(cfg.dataset, data_dir=cfg.data_dir, data_path=cfg.data_path, target=cfg.target,
                         val_fraction=cfg.val_fraction, seed=cfg.seed, image_size=cfg.image_size, task=cfg.task,
                         mirror=cfg.mirror, download=cfg.download, cache=cfg.cache,
                         max_resident_mb=cfg.max_resident_mb, table_spec=table_spec)


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
        raise UserError("this run used a custom model from the Python API; rebuild it in Python and load the "
                        "checkpoint's 'model' state_dict")
    index_targets = cfg.loss in ("cross_entropy", "nll")
    defaults = Config()
    options = {k: getattr(cfg, k) for k in ("head", "weights", "freeze") if getattr(cfg, k) != getattr(defaults, k)}
    return build_model(cfg.model, num_classes=len(classes) if index_targets else None, input_shape=input_shape,
                       **options)


def train_config(cfg: Config, resume: Path | None = None) -> FitResult:
    seed_everything(cfg.seed)
    splits = load_data(cfg)
    cfg = resolve_loss(cfg, splits.classes)
    if splits.classes and cfg.loss in ("mse", "l1"):
        raise UserError(f"loss={cfg.loss} is for regression targets, but {cfg.dataset} has classes "
                        f"({', '.join(splits.classes[:5])}...): use loss=auto or loss=cross_entropy")
    print(f"data: {cfg.dataset} from {splits.source}: {len(splits.train)} train / {len(splits.test)} test samples, "
          f"input {tuple(splits.input_shape)}, {describe_classes(splits.classes)}")
    if "table" in splits.info:
        print(f"table: {splits.info['table'].get('summary', '')}")
    model = model_for(cfg, splits.classes, splits.input_shape)
    info = {**splits.info, "data_shape": list(splits.input_shape)}  # what predict resizes new images to
    return fit(model, splits.train, splits.test, config=cfg, classes=splits.classes, info=info, resume=resume)


def train(recipe: str = "mnist-cnn", **overrides) -> FitResult:
    """Train a built-in recipe or a YAML file, with config overrides (epochs=3, lr=0.1, ...)."""
    return train_config(make_config(recipe, overrides))


def resume(run: str, **overrides) -> FitResult:
    """Continue a run from its last checkpoint; max_steps is reset unless given again."""
    path = ckpt.resolve(run, which="last")
    values = dict(ckpt.load(path, resume=True)["config"])  # every entry resume needs, checked up front
    values["max_steps"] = 0
    values.update(overrides)
    return train_config(from_dict(values), resume=path)


def load_checkpoint_model(state: dict, cfg: Config, path: Path) -> torch.nn.Module:
    model = model_for(cfg, state.get("classes") or [], tuple(state.get("input_shape") or ()))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise UserError(f"{path}: the weights do not match model '{cfg.model}': {str(e).splitlines()[0]}") from None
    return model


def evaluate_checkpoint(run: str, best: bool = False, **overrides) -> tuple[dict, torch.nn.Module, object, Config]:
    """(result, model, test batches, config) for a checkpoint evaluated on its test split."""
    path = ckpt.resolve(run, which="best" if best else "last")
    state = ckpt.load(path)
    cfg = from_dict({**state["config"], **overrides})
    splits = load_data(cfg, table_spec=(state.get("info") or {}).get("table"))  # the run's own preprocessing
    model = load_checkpoint_model(state, cfg, path)
    device = pick_device(cfg.device)
    model.to(device)
    batches, _ = eval_batches(splits.test, transforms=cfg.transforms, mean=cfg.mean, std=cfg.std,
                              eval_batch_size=cfg.eval_batch_size, channels_last=cfg.channels_last,
                              workers=cfg.workers, model=model, device=device)
    criterion = Criterion(cfg.loss, cfg.reduction)
    check_model_accepts(model, [batches.sample(2)], criterion, splits.classes)
    result = evaluate(model, batches, criterion, len(splits.classes))
    result.update(checkpoint=str(path), epoch=state["epoch"], step=state["step"], dataset=cfg.dataset,
                  classes=splits.classes)
    return result, model, batches, cfg


def evaluate_run(run: str, best: bool = False, **overrides) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix of a checkpoint on its test split."""
    return evaluate_checkpoint(run, best, **overrides)[0]


@torch.no_grad()
def report_run(run: str, best: bool = False, **overrides) -> tuple[dict, list[Path]]:
    """Evaluate a run's checkpoint and (re)write its plots/ folder; returns (result, plot paths)."""
    from .data.transforms import normalize_args, parse_all
    from .report import write_plots

    result, model, batches, cfg = evaluate_checkpoint(run, best, **overrides)
    criterion = Criterion(cfg.loss, cfg.reduction)
    sample = None
    if criterion.is_classification:
        x, y = next(iter(batches.epoch()))
        sample = (x[:16].float().cpu(), y[:16].cpu(), criterion.predict(model(x[:16])).cpu())
    mean, std = normalize_args(parse_all(cfg.transforms), cfg.mean, cfg.std)
    ckpt_path = Path(result["checkpoint"])
    # plots/ of the run folder, or <name>-plots/ beside a checkpoint file kept elsewhere
    in_run = ckpt_path.parent.name == "checkpoints" and (ckpt_path.parent.parent / "config.yaml").exists()
    out = ckpt_path.parent.parent if in_run else ckpt_path.with_name(f"{ckpt_path.stem}-report")
    return result, write_plots(out, result, result["classes"], sample, mean, std)
