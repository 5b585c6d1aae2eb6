"""Losses, optimizers and learning-rate schedulers of the notes, built from plain arguments."""
from __future__ import annotations

import collections

import torch
from torch import nn

from .errors import UserError

CLASSIFY = {"cross_entropy", "nll", "bce", "bce_logits"}


class Criterion:
    """A loss of the notes plus the rule that turns outputs into predicted classes.

    BCE-style and regression losses compare (B, 1) outputs with (B,) targets: the target is
    reshaped and cast to the output's shape and dtype, as the notes do by hand with `y[:, [-1]]`.
    """

    def __init__(self, name: str, reduction: str = "mean", label_smoothing: float = 0.0):
        losses = {
            "cross_entropy": lambda: nn.CrossEntropyLoss(reduction=reduction, label_smoothing=label_smoothing),
            "nll": lambda: nn.NLLLoss(reduction=reduction),
            "bce": lambda: nn.BCELoss(reduction=reduction),
            "bce_logits": lambda: nn.BCEWithLogitsLoss(reduction=reduction),
            "mse": lambda: nn.MSELoss(reduction=reduction),
            "l1": lambda: nn.L1Loss(reduction=reduction),
        }
        if name not in losses:
            raise UserError(f"unknown loss '{name}'; available: {', '.join(losses)}")
        self.name, self.reduction = name, reduction
        self.fn = losses[name]()
        self.is_classification = name in CLASSIFY
        self.index_targets = name in ("cross_entropy", "nll")

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.index_targets and y.shape != out.shape:
            y = y.reshape(out.shape)
        if not self.index_targets:
            y = y.to(out.dtype)
        return self.fn(out, y)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Class indices (B,) from outputs: argmax, or a threshold for single-output BCE."""
        if self.name == "bce":
            return (out.reshape(-1) > 0.5).long()
        if self.name == "bce_logits":
            return (out.reshape(-1) > 0).long()
        return out.argmax(1)


NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)  # _NormBase: BatchNorm*, InstanceNorm*


def param_groups(model: nn.Module, bias_lr_scale: float = 1.0) -> list[dict]:
    """The trainable parameters as optimizer groups: one group, or with bias_lr_scale != 1 the main
    group first (metrics.csv reports its lr) and then the bias group, marked with its `lr_scale`.

    The bias group holds every parameter of a normalisation layer (BatchNorm*, InstanceNorm*,
    LayerNorm, GroupNorm, RMSNorm: weight and bias) and the parameter named `bias` of any other
    layer. Parameters with requires_grad=False (frozen) are left out of the optimizer."""
    main, biases, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            (biases if bias_lr_scale != 1 and (isinstance(module, NORM_LAYERS) or name == "bias") else main).append(p)
    return [{"params": main}, {"params": biases, "lr_scale": bias_lr_scale}] if biases else [{"params": main}]


def build_optimizer(params, name: str, lr: float, momentum: float = 0.0, nesterov: bool = False,
                    weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """SGD, Adam or AdamW; the fused implementation where torch has one for these parameters (one pass
    over each tensor instead of several: 5 % faster on the notes' MLP, bitwise the same result there).

    `params`: tensors, or groups from `param_groups`. A group with `lr_scale` s trains with lr x s and
    weight_decay / s: the decay per step (lr x weight_decay for SGD and AdamW) stays that of the main
    group, as airbench does for its BatchNorm biases, so a larger lr moves those parameters faster
    without also decaying them s times harder."""
    params = list(params)
    groups = [dict(g) for g in params] if params and isinstance(params[0], dict) else [{"params": params}]
    for g in groups:
        g["params"] = list(g["params"])
        if "lr_scale" in g:
            g.update(lr=lr * g["lr_scale"], weight_decay=weight_decay / g["lr_scale"])
    tensors = [p for g in groups for p in g["params"]]
    fused = bool(tensors) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors)
    try:
        if name == "sgd":
            return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                                   fused=fused or None)
        if name in ("adam", "adamw"):
            cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
            return cls(groups, lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=fused or None)
    except ValueError as e:
        raise UserError(f"bad optimizer settings for {name}: {e}") from e
    except RuntimeError:  # a device or dtype without a fused kernel: the plain implementation
        return build_optimizer_plain(groups, name, lr, momentum, nesterov, weight_decay, betas)
    raise UserError(f"unknown optimizer '{name}'; available: sgd, adam, adamw")


def build_optimizer_plain(groups, name, lr, momentum, nesterov, weight_decay, betas) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, name: str, *, epochs: int, steps_per_epoch: int,
                    step_size: int = 5, gamma: float = 0.1, milestones: list[int] | None = None,
                    max_lr: float = 0.0, lr_patience: int = 2, mode: str = "max", start_factor: float = 0.0,
                    peak_at: float = 0.0, end_factor: float = 0.0) -> tuple[object | None, bool]:
    """(scheduler, steps_per_batch). StepLR, MultiStepLR and plateau count epochs, as in the notes;
    cosine, one-cycle and linear count optimizer steps over the whole run. Each keeps the ratio of
    the groups' learning rates (param_groups)."""
    sched = torch.optim.lr_scheduler
    total = max(1, epochs * steps_per_epoch)
    if name == "none":
        return None, False
    if name == "step":
        return sched.StepLR(optimizer, step_size=step_size, gamma=gamma), False
    if name == "multistep":
        if not milestones:
            raise UserError("scheduler=multistep needs milestones, e.g. milestones=[10,15]")
        return sched.MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma), False
    if name == "plateau":  # gamma x lr after lr_patience epochs without a better validation metric
        return sched.ReduceLROnPlateau(optimizer, mode=mode, factor=gamma, patience=lr_patience), False
    if name == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total), True
    if name == "onecycle":  # max_lr is the main group's peak; the other groups peak in proportion
        lrs = [g["lr"] for g in optimizer.param_groups]
        peaks = [max_lr * (lr / lrs[0]) for lr in lrs] if max_lr and lrs[0] else [max_lr or lr for lr in lrs]
        return sched.OneCycleLR(optimizer, max_lr=peaks, total_steps=total), True
    if name == "linear":
        return sched.LambdaLR(optimizer, triangle(total, start_factor, peak_at, end_factor)), True
    raise UserError(f"unknown scheduler '{name}'; available: none, step, multistep, plateau, cosine, onecycle, "
                    "linear")


def triangle(total: int, start: float, peak_at: float, end: float):
    """The lr factor of step k of `total`: linear from `start` (step 0) up to 1 at step
    int(peak_at x total), then linear down to `end` at step `total` (the value after the last step)."""
    peak = int(peak_at * total)

    def factor(k: int) -> float:
        if k < peak:
            return start + (1.0 - start) * k / peak
        return 1.0 + (end - 1.0) * (k - peak) / max(total - peak, 1)

    return factor


class Schedule:
    """The learning rate over a run: a torch scheduler (stepped per optimizer step or per epoch)
    times a linear warm-up over the first `warmup_steps` optimizer steps.

    The warm-up factor is applied on top of whatever lr the scheduler set, and taken off again
    before the scheduler steps, so it composes with every scheduler, including the ones that
    read the current lr (StepLR, ReduceLROnPlateau) and the ones that compute it (OneCycleLR)."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler, per_step: bool, warmup_steps: int = 0):
        self.optimizer, self.scheduler, self.per_step, self.warmup_steps = optimizer, scheduler, per_step, warmup_steps
        self.base = [g["lr"] for g in optimizer.param_groups]  # the scheduler's lr, without warm-up
        self.step_count = 0
        self._apply()

    def _apply(self) -> None:
        factor = min(1.0, (self.step_count + 1) / (self.warmup_steps + 1)) if self.warmup_steps else 1.0
        for group, lr in zip(self.optimizer.param_groups, self.base):
            group["lr"] = lr * factor

    def _step_scheduler(self, *args) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.base):
            group["lr"] = lr  # the scheduler sees its own lr
        self.scheduler.step(*args)
        self.base = [g["lr"] for g in self.optimizer.param_groups]

    def after_step(self) -> None:
        """After each optimizer step."""
        self.step_count += 1
        if self.scheduler is not None and self.per_step:
            self._step_scheduler()
        self._apply()

    def after_epoch(self, metric: float | None) -> None:
        """After each epoch; `metric` (the validation score) drives ReduceLROnPlateau."""
        if self.scheduler is None or self.per_step:
            return
        plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if plateau and metric is None:
            return  # no validation data: nothing to reduce on
        self._step_scheduler(*([metric] if plateau else []))
        self._apply()

    def state_dict(self) -> dict:
        sched = self.scheduler.state_dict() if self.scheduler is not None else None
        if sched and isinstance(sched.get("milestones"), collections.Counter):
            sched["milestones"] = dict(sched["milestones"])  # Counter is not a weights_only type
        return {"scheduler": sched, "base": list(self.base), "step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        sched = state.get("scheduler")
        if self.scheduler is not None and sched:
            sched = dict(sched)
            if "milestones" in sched:
                sched["milestones"] = collections.Counter(sched["milestones"])
            self.scheduler.load_state_dict(sched)
        self.base = list(state.get("base", self.base))
        self.step_count = int(state.get("step_count", 0))
        self._apply()
