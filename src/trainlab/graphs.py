"""Whole training steps captured once in a CUDA graph and replayed (config `graph`).

The notes' models are launch-bound on a GPU: a step of mnist-cnn at batch 64 is ~2 ms of kernel
launches around ~0.2 ms of work, and the same step captured whole ran in 0.235 ms on an H100
(../shared/GPU.md). `GraphStep` captures the trainer's own step function — zero_grad, forward,
loss, backward, clipping, the fused optimizer, the weight average — and replays it, following
PyTorch's "whole-network capture" recipe:

- Each micro-batch of an accumulation group is copied into a static input buffer; the captured
  step reads those. A group whose shapes differ (the epoch's short last batch) runs eagerly.
- The learning rate is a device tensor per param group while capturing, so the fused
  optimizer kernel reads it on every replay; before each replay the scheduler's current value
  (a Python float in `param_groups`, as in eager runs and checkpoints) is written into it.
- Warm-up runs the step on a side stream first (lazy optimizer state, cuBLAS workspaces). That
  changes weights, BatchNorm buffers, optimizer state and the RNG, so all of it is snapshot
  before and written back after: the captured run takes the same steps as the eager one.

`why_not` and `decide` are the fallback rules; the capture itself can still fail on a model that
syncs with the host (`.item()`, data-dependent shapes), and the trainer then falls back to eager
steps with one line saying why.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch

from .errors import UserError

CAPTURE_DEVICES = ("cuda",)  # tests add "cpu" together with a stand-in backend
WARMUP_STEPS = 2  # side-stream steps before capture (PyTorch's guide uses a few; state is restored after)

Group = list[tuple[torch.Tensor, torch.Tensor]]  # an accumulation group's (x, y) micro-batches
Stats = list[tuple[torch.Tensor, torch.Tensor]]  # (loss, correct) per micro-batch, on the device


def why_not(device: torch.device, distributed: bool, loss_scaling: bool, optimizer: torch.optim.Optimizer) -> str:
    """'' when the trainer's step can be captured whole, else the reason it cannot."""
    if device.type not in CAPTURE_DEVICES:
        return f"the device is {device.type}, not a CUDA GPU"
    if distributed:
        return "under torchrun the DDP gradient all-reduce is not captured"
    if loss_scaling:
        return "amp=fp16 loss scaling checks the gradients for inf/NaN on the host every step"
    if not all(group.get("fused") for group in optimizer.param_groups):
        return "the optimizer is not torch's fused implementation (it needs floating-point parameters on one GPU)"
    return ""


def decide(mode: str, reason: str, device: torch.device) -> tuple[bool, str]:
    """(capture?, a line for the user or ""). graph=true insists: a reason not to is an error;
    auto falls back to eager steps, saying why only on a GPU, where graphs were to be expected."""
    if mode == "false":
        return False, ""
    if not reason:
        return True, ""
    if mode == "true":
        raise UserError(f"graph=true, but the training step cannot be captured: {reason}; "
                        "use graph=auto (eager steps then) or graph=false")
    return False, (f"graph: eager steps ({reason})" if device.type == "cuda" else "")


class CudaGraphs:
    """The real backend: warm-up on a side stream, then one `torch.cuda.graph` capture."""

    def warm_up(self, fn: Callable[[], torch.Tensor], times: int) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(times):
                fn()
        torch.cuda.current_stream().wait_stream(side)

    def capture(self, fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()  # recorded, not run: `out` is refilled by every replay

        def replay() -> torch.Tensor:
            graph.replay()
            return out

        return replay


class GraphStep:
    """`step(group)` captured at its first full group and replayed for every group of the same shapes.

    `step` is the trainer's eager step: it must begin with `zero_grad(set_to_none=True)`, so that the
    captured backward assigns fresh gradients rather than accumulating onto the last replay's."""

    def __init__(self, step: Callable[[Group], Stats], modules: list[torch.nn.Module],
                 optimizer: torch.optim.Optimizer, device: torch.device, backend=None):
        self.step, self.modules, self.optimizer, self.device = step, modules, optimizer, device
        self.backend = backend or CudaGraphs()
        self.replay: Callable[[], torch.Tensor] | None = None
        self.static: Group = []
        groups = optimizer.param_groups
        # the fused CUDA kernels read the lr tensor as float32 (the value a float lr becomes there);
        # the CPU kernels read it as a double, as they do a float lr
        dtype = torch.float64 if device.type == "cpu" else torch.float32
        self.lr = [torch.tensor(float(g["lr"]), dtype=dtype, device=device) for g in groups]
        self.lr_fed = [float(g["lr"]) for g in groups]

    def __call__(self, group: Group) -> Stats | None:
        """The group's (loss, correct) per micro-batch from one replay, or None when it does not fit."""
        if self.replay is None:
            self.capture(group)
        if not self.fits(group):
            return None
        for (sx, sy), (x, y) in zip(self.static, group):
            sx.copy_(x)
            sy.copy_(y)
        self.feed_lr()
        stats = self.replay().clone()  # (k, 2) float64; the next replay overwrites the static one
        return [(row[0], row[1]) for row in stats]

    def fits(self, group: Group) -> bool:
        return len(group) == len(self.static) and all(
            x.shape == sx.shape and y.shape == sy.shape and x.dtype == sx.dtype and y.dtype == sy.dtype
            for (x, y), (sx, sy) in zip(group, self.static))

    def feed_lr(self) -> None:
        """The scheduler's lr into the device tensors the graph reads (a fill only when it changed)."""
        for i, group in enumerate(self.optimizer.param_groups):
            if group["lr"] != self.lr_fed[i]:
                self.lr[i].fill_(group["lr"])
                self.lr_fed[i] = group["lr"]

    def body(self) -> torch.Tensor:
        """The step on the static buffers with the lr tensors in place: what is captured (and what
        the test backend replays eagerly)."""
        with group_values(self.optimizer.param_groups, "lr", self.lr):
            stats = self.step(self.static)
        return torch.stack([torch.stack([loss.double(), correct.double()]) for loss, correct in stats])  # (k, 2)

    def capture(self, group: Group) -> None:
        """Static buffers from this group, warm-up, state put back, capture. On failure the state
        is put back too, and the error propagates for the trainer to report."""
        self.static = [(torch.empty_like(x).copy_(x), torch.empty_like(y).copy_(y)) for x, y in group]
        self.feed_lr()
        saved, rng = snapshot(self.modules, self.optimizer), rng_state(self.device)
        try:
            self.backend.warm_up(self.body, WARMUP_STEPS)
        finally:
            restore(saved, self.optimizer)
            set_rng_state(self.device, rng)
        with capturable(self.optimizer):
            self.replay = self.backend.capture(self.body)


@contextlib.contextmanager
def group_values(groups: list[dict], key: str, values: list):
    """`key` of each param group set to `values` for the duration, then put back."""
    before = [g[key] for g in groups]
    for g, value in zip(groups, values):
        g[key] = value
    try:
        yield
    finally:
        for g, value in zip(groups, before):
            g[key] = value


def capturable(optimizer: torch.optim.Optimizer):
    """Adam/AdamW refuse capture unless `capturable`; set only while capturing, so checkpoints and
    eager steps (also on a CPU after a resume) see the optimizer as it was built."""
    groups = [g for g in optimizer.param_groups if "capturable" in g]
    return group_values(groups, "capturable", [True] * len(groups))


def snapshot(modules: list[torch.nn.Module], optimizer: torch.optim.Optimizer) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(tensor, copy) for every parameter, buffer and optimizer state tensor that exists now."""
    tensors = [t for m in modules for t in m.state_dict(keep_vars=True).values()]
    tensors += [t for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
    return [(t, t.detach().clone()) for t in tensors]


@torch.no_grad()
def restore(saved: list[tuple[torch.Tensor, torch.Tensor]], optimizer: torch.optim.Optimizer) -> None:
    """Copy the snapshot back in place (the tensors keep their addresses, which the graph records).
    Optimizer state created during warm-up is zeroed: zero is the state of a first step for SGD
    momentum (buffer = 0 * momentum + grad, exact with dampening 0) and for Adam/AdamW (step 0,
    zero moments)."""
    for tensor, copy in saved:
        tensor.detach().copy_(copy)
    known = {id(t) for t, _ in saved}
    for state in optimizer.state.values():
        for t in state.values():
            if torch.is_tensor(t) and id(t) not in known:
                t.zero_()


def rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def set_rng_state(device: torch.device, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)
