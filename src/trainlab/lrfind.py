"""The learning-rate finder (fastai's method, after Leslie Smith): train a throwaway copy of the
recipe's model for a few hundred steps while the lr grows exponentially, smooth the loss, and
suggest the lr where the smoothed loss falls fastest.

`trainlab lr-find RECIPE [key=value ...]` writes only its plot (lr_find.png); no run folder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


from .config import Config
from .errors import UserError

SMOOTHING = 0.98  # fastai's exponential moving average of the loss, with bias correction
DIVERGE = 4.0  # stop once the smoothed loss is this many times its best


@dataclass
class LRFind:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # smoothed
    suggestion: float = float("nan")


def sweep(cfg: Config, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 200) -> LRFind:
    """Run the sweep on the recipe's data and model (fresh, seeded); the lr of step i is
    start_lr * (end_lr / start_lr) ** (i / (steps - 1))."""
    from .api import load_data, model_for, resolve_loss
    from .optim import build_optimizer, param_groups
    from .runtime import build, seed_everything

    if not 0 < start_lr < end_lr:
        raise UserError(f"lr-find needs 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    seed_everything(cfg.seed)
    splits = load_data(cfg)
    cfg = resolve_loss(cfg, splits.classes)
    rt = build(cfg, model_for(cfg, splits.classes, splits.input_shape), splits.train)
    batches, _ = rt.batches(splits.train)
    opt = build_optimizer(param_groups(rt.model, cfg.bias_lr_scale), cfg.optimizer, start_lr, cfg.momentum,
                          cfg.nesterov, cfg.weight_decay, cfg.betas)
    result, avg, best = LRFind(), 0.0, math.inf
    rt.model.train()
    for i, (x, y) in enumerate(endless(batches, steps)):
        lr = start_lr * (end_lr / start_lr) ** (i / max(steps - 1, 1))
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # bias_lr_scale keeps its ratio
        with rt.autocast:
            out = rt.model(x)
        loss = rt.criterion(out.float(), y)
        opt.zero_grad(set_to_none=True)
        rt.scaler.scale(loss).backward()
        rt.scaler.step(opt)
        rt.scaler.update()
        value = loss.item()  # one sync per step: the sweep must see each loss to stop on divergence
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        smoothed = avg / (1 - SMOOTHING ** (i + 1))
        if not math.isfinite(smoothed) or (i > 10 and smoothed > DIVERGE * best):
            break
        best = min(best, smoothed)
        result.lrs.append(lr)
        result.losses.append(smoothed)
    result.suggestion = steepest(result.lrs, result.losses)
    return result


def endless(batches, steps: int):
    """`steps` training batches, starting new epochs as needed."""
    served = 0
    while served < steps:
        for xy in batches.epoch():
            yield xy
            served += 1
            if served == steps:
                return


def steepest(lrs: list[float], losses: list[float]) -> float:
    """The lr where the smoothed loss falls fastest against log(lr) (fastai's 'steep' suggestion)."""
    if len(lrs) < 3:
        raise UserError(f"lr-find: the loss diverged after {len(lrs)} steps; lower start_lr")
    slopes = [(losses[i + 1] - losses[i - 1]) / (math.log(lrs[i + 1]) - math.log(lrs[i - 1]))
              for i in range(1, len(lrs) - 1)]
    return lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)]


def plot(result: LRFind, path: Path, title: str) -> Path:
    from .plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.plot(result.lrs, result.losses, color="#1f77b4")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (smoothed)")
    ax.axvline(result.suggestion, color="#d62728", linestyle="--", label=f"suggested lr {result.suggestion:.2e}")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path, title)
