"""The Python API behind the CLI: train a recipe, resume a run, evaluate a checkpoint.

`trainlab.fit` (trainer.py) trains any nn.Module; the functions here add recipes, registered
datasets and models, and checkpoints on top of it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import checkpoint as ckpt
from .config import Config, from_dict, make_config
from .data import Splits, build_dataset
from .data.batches import TensorBatches
from .engine import evaluate, pick_device, seed_everything
from .errors import UserError
from .models import build_model
from .optim import Criterion
from .trainer import FitResult, fit, input_transform


def load_data(cfg: Config) -> Splits:
    return build_dataset(cfg.dataset, data_dir=cfg.data_dir, data_path=cfg.data_path, target=cfg.target,
                         val_fraction=cfg.val_fraction, seed=cfg.seed)


def model_for(cfg: Config, classes: list[str]) -> torch.nn.Module:
    if cfg.model == "custom":
        raise UserError("this run used a custom model from the Python API; rebuild it in Python and load the "
                        "checkpoint's 'model' state_dict")
    index_targets = cfg.loss in ("cross_entropy", "nll")
    return build_model(cfg.model, num_classes=len(classes) if index_targets else None)


def train_config(cfg: Config, resume: Path | None = None) -> FitResult:
    seed_everything(cfg.seed)
    splits = load_data(cfg)
    print(f"data: {cfg.dataset} from {splits.source}: {len(splits.train)} train / {len(splits.test)} test samples, "
          f"input {tuple(splits.input_shape)}, {len(splits.classes) or 'no'} classes")
    model = model_for(cfg, splits.classes)
    return fit(model, splits.train, splits.test, config=cfg, classes=splits.classes, info=splits.info, resume=resume)


def train(recipe: str = "mnist-cnn", **overrides) -> FitResult:
    """Train a built-in recipe or a YAML file, with config overrides (epochs=3, lr=0.1, ...)."""
    return train_config(make_config(recipe, overrides))


def resume(run: str, **overrides) -> FitResult:
    """Continue a run from its last checkpoint; max_steps is reset unless given again."""
    path = ckpt.resolve(run, which="last")
    values = dict(ckpt.load(path)["config"])
    values["max_steps"] = 0
    values.update(overrides)
    return train_config(from_dict(values), resume=path)


def load_checkpoint_model(state: dict, cfg: Config, path: Path) -> torch.nn.Module:
    model = model_for(cfg, state.get("classes") or [])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise UserError(f"{path}: the weights do not match model '{cfg.model}': {str(e).splitlines()[0]}") from None
    return model


def evaluate_run(run: str, best: bool = False, **overrides) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix of a checkpoint on its test split."""
    path = ckpt.resolve(run, which="best" if best else "last")
    state = ckpt.load(path)
    values = dict(state["config"])
    values.update(overrides)
    cfg = from_dict(values)
    splits = load_data(cfg)
    model = load_checkpoint_model(state, cfg, path)
    device = pick_device(cfg.device)
    model.to(device)
    norm = input_transform(cfg, splits.test.x, model, device)
    batches = TensorBatches(splits.test, cfg.eval_batch_size, device=device, shuffle=False, transform=norm)
    result = evaluate(model, batches, Criterion(cfg.loss, cfg.reduction), len(splits.classes))
    result.update(checkpoint=str(path), epoch=state["epoch"], step=state["step"], dataset=cfg.dataset,
                  classes=splits.classes)
    return result
