"""An exponential moving average of a model's weights (`ema` > 0), updated after every optimizer step.

After step t the averaged parameters are  avg_t = ema × avg_{t-1} + (1 − ema) × live_t,  starting
from the weights the run starts with; buffers (BatchNorm running statistics, counters) are copies of
the live model's. Validation, best.pt selection, the test at the end of a run and the plots use the
averaged copy (through `Runtime.averaged`); checkpoints keep the live weights under "model" (exact
resume needs them) and the average under "ema", which eval, report, predict and export load.

Why not torch.optim.swa_utils.AveragedModel: its update branches on the host (`n_averaged == 0`)
and keeps a Python-side count, so it cannot be captured in a CUDA graph with the training step.
`Averager.update()` only launches device kernels, in place, on tensors whose identity never changes
(no `.item()`, no Python state that depends on tensor values), so a captured step replays it.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .checkpoint import first_line
from .errors import UserError


class Averager:
    """The moving average of `model`'s weights: `module` is a full copy on the same device and memory format."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model)  # clone() keeps each tensor's device, dtype and strides (NHWC)
        self.module.requires_grad_(False)
        # fixed lists of the same tensors for the whole run: a captured graph reads and writes these addresses
        self.averaged_params = list(self.module.parameters())
        self.live_params = list(model.parameters())
        self.averaged_buffers = list(self.module.buffers())
        self.live_buffers = list(model.buffers())

    @torch.no_grad()
    def update(self) -> None:
        """avg += (1 − ema) × (live − avg) for every parameter, buffers copied: device kernels only."""
        if self.averaged_params:
            torch._foreach_lerp_(self.averaged_params, self.live_params, 1.0 - self.decay)
        if self.averaged_buffers:
            torch._foreach_copy_(self.averaged_buffers, self.live_buffers)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Copies into the existing tensors (their identity, which a captured graph holds, stays)."""
        self.module.load_state_dict(state)


def attach(rt, decay: float) -> Averager | None:
    """The averager of `rt.model` for `decay` > 0, set as `rt.averaged` so that evaluation uses it; None when off."""
    averager = Averager(rt.model, decay) if decay else None
    rt.averaged = averager.module if averager else None
    return averager


def restore(averager: Averager | None, state: dict, decay: float) -> None:
    """The checkpoint's averaged weights into `averager`. A resume keeps the run's own `ema`: changing
    it mid-run would leave the run's validation numbers and best.pt mixing two kinds of weights, so
    a different value is refused (start a new run instead)."""
    saved = float((state.get("config") or {}).get("ema", 0.0))
    if saved != decay:
        raise UserError(f"'ema' cannot change when resuming (the run has ema={saved}); resume with ema={saved} "
                        f"or start a new run with ema={decay}")
    if averager is None:
        return
    if "ema" not in state:
        raise UserError("the checkpoint has no averaged weights ('ema' entry) although its run has "
                        f"ema={saved}; it cannot resume with averaging")
    try:
        averager.load_state_dict(state["ema"])
    except (RuntimeError, KeyError) as e:
        raise UserError(f"the checkpoint's averaged weights ('ema') do not fit the model: {first_line(e)}") from e
