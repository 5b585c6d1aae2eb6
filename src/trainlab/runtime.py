"""The runtime: everything a run needs besides its data, built once from the config.

`build(cfg, model, data)` decides the device, the precision (autocast dtype and an always-on
GradScaler that is enabled only for fp16), the memory format, the criterion and puts the model
on the device in that format. Training, `trainlab eval` and `predict` all go through a Runtime,
so their batches, precision and loss cannot disagree: evaluation of a finished run reproduces the
`val_loss` and `val_acc` of its last metrics row. Every evaluation and prediction calls
`inference_model()`: the averaged weights while training with `ema`, under the config's `tta`.
"""
from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import distributed, tta
from .checkpoint import first_line
from .config import Config, replace
from .data import TensorData
from .data.plan import plan_batches
from .distributed import Dist
from .errors import UserError
from .evaluation import evaluate
from .optim import Criterion

# CUDA: below this batch size the notes' models are launch-bound and bf16 autocast only adds casts
# (H100, batch 64: mnist-cnn 1.72 vs 1.36 ms/step, cifar10-quick 2.52 vs 2.18 ms/step; ../shared/GPU.md)
AUTO_AMP_MIN_BATCH_CUDA = 256


@dataclass
class Runtime:
    cfg: Config
    device: torch.device
    amp: torch.dtype | None  # autocast dtype; None: fp32
    channels_last: bool  # the model and uint8 image batches are NHWC
    criterion: Criterion
    model: nn.Module  # the plain model: evaluation, prediction, state_dict
    scaler: torch.amp.GradScaler  # always there; enabled only for fp16, a pass-through otherwise
    dist: Dist = Dist()  # this process's place under torchrun (rank 0 of 1 otherwise)
    threads_note: str = ""  # how threads=0 chose; training prints it (eval/predict --json stay pure JSON)
    train_model: nn.Module | None = None  # what training calls: DDP(model) under torchrun, else model
    averaged: nn.Module | None = None  # training with ema > 0: the weights' moving average (averaging.py)

    def __post_init__(self):
        # one reusable context: no per-step construction; disabled autocast costs nothing measurable.
        # No cast cache: a CUDA graph capture must not keep casts made outside it (PyTorch's CUDA-graphs
        # notes), and each weight is cast once per forward anyway.
        self.autocast = torch.autocast(self.device.type, dtype=self.amp or torch.float32,
                                       enabled=self.amp is not None, cache_enabled=False)
        self.train_model = self.train_model or self.model

    def no_sync(self):
        """Skip DDP's gradient all-reduce (accumulation micro-batches before the group's last)."""
        return self.train_model.no_sync() if self.dist.active else contextlib.nullcontext()

    def batches(self, train, val=None):
        """(train batches, val batches or None) on this runtime's device and memory format."""
        c = self.cfg
        return plan_batches(train, val, transforms=c.transforms, mean=c.mean, std=c.std, batch_size=c.batch_size,
                            eval_batch_size=c.eval_batch_size, seed=c.seed, drop_last=c.drop_last,
                            channels_last=self.channels_last, workers=c.workers, device=self.device,
                            rank=self.dist.rank, world=self.dist.world)

    def eval_batches(self, data):
        """In-order batches with only the deterministic part of the transforms, as validation gets."""
        c = self.cfg
        batches, _ = plan_batches(data, None, transforms=c.transforms, mean=c.mean, std=c.std,
                                  batch_size=c.eval_batch_size, eval_batch_size=c.eval_batch_size, seed=0,
                                  drop_last=False, channels_last=self.channels_last, workers=c.workers,
                                  device=self.device, evaluation=True)
        return batches

    @property
    def evaluated(self) -> nn.Module:
        """The weights evaluation and prediction use: the moving average while training with ema, else the model."""
        return self.model if self.averaged is None else self.averaged

    def inference_model(self) -> nn.Module:
        """What every evaluation and prediction calls, in eval mode: `evaluated` under the config's tta."""
        return tta.wrap(self.evaluated, self.cfg.tta).eval()

    def evaluate(self, batches, num_classes: int, target_scale: list[float] | None = None) -> dict:
        return evaluate(self.inference_model(), batches, self.criterion, num_classes, self.autocast, target_scale)

    def normalization(self) -> tuple[list[float], list[float]]:
        """(mean, std) the inputs were normalised with (from Normalize in transforms or the keys)."""
        from .data.transforms import normalize_args, parse_all

        return normalize_args(parse_all(self.cfg.transforms), self.cfg.mean, self.cfg.std)

    @torch.no_grad()
    def outputs(self, batches) -> torch.Tensor:
        """The model's float32 outputs for every batch, in order, on the CPU."""
        model, out = self.inference_model(), []
        for x, _ in batches.epoch():
            with self.autocast:
                out.append(model(x).float())
        return torch.cat(out).cpu()


def build(cfg: Config, model: nn.Module, data=None) -> Runtime:
    """The runtime for `cfg`: set up device, precision, criterion, then the model on the device.
    `data` (the training or evaluation data) decides whether NHWC applies: uint8 image tensors."""
    dist = distributed.from_env()
    device, note = setup_device(cfg, dist)
    if note:  # record the automatic choice: CPU sums depend on the thread count, so a resume reuses it
        cfg = replace(cfg, threads=torch.get_num_threads())
    device = distributed.setup(dist, device)
    if isinstance(data, TensorData):  # before anything runs: tta is for image batches only
        tta.check_inputs(cfg.tta, (len(data), *data.x.shape[1:]))
    amp = setup_precision(cfg, device)
    criterion = Criterion(cfg.loss, cfg.reduction, cfg.label_smoothing)
    nhwc = cfg.channels_last and is_image_tensor(data) and uses_conv(model)
    model = model.to(device, memory_format=torch.channels_last) if nhwc else model.to(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    return Runtime(cfg, device, amp, nhwc, criterion, model, scaler, dist, note,
                   distributed.wrap(model, dist, device))


def setup_device(cfg: Config, dist: Dist = Dist()) -> tuple[torch.device, str]:
    """(device, a note on the automatic thread choice or "")."""
    device, note = pick_device(cfg.device), ""
    if device.type == "cpu" or cfg.threads:
        threads, note = choose_threads(cfg.threads, dist)
        torch.set_num_threads(threads)
    if cfg.deterministic:
        make_deterministic()
    elif device.type == "cuda":  # fixed batch shapes: let cuDNN time its algorithms once per shape (airbench does)
        torch.backends.cudnn.benchmark = True
    return device, note


def choose_threads(requested: int, dist: Dist = Dist()) -> tuple[int, str]:
    """torch's intra-op threads: `requested`, or (0 = auto) the cores this process may use less the
    load of other processes. One thread per core on a busy machine collapsed: mnist-cnn took 39 s
    per epoch with 2 threads and 1.4 s with 1 on 2 cores at load 4-7 (benchmarks/NOTES.md)."""
    if requested:
        return requested, ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if dist.active:  # the processes of this machine share its cores
        threads = max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", dist.world)))
        return threads, f"threads: {threads} per process (auto: {cores} cores shared by the local ranks)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    others = max(0.0, load - 1.0)  # the 1-minute load average counts this process too
    threads = max(1, min(cores, int(cores - others + 0.5)))
    return threads, f"threads: {threads} (auto: {cores} cores, load average {load:.1f}; threads=N sets it)"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA GPU is available; use device=auto or device=cpu")
    return torch.device(name)


def make_deterministic() -> None:
    """Deterministic kernels everywhere (cuDNN, cuBLAS, scatter/index ops); an op without one raises."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS first starts
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True)


def setup_precision(cfg: Config, device: torch.device) -> torch.dtype | None:
    return amp_dtype(cfg.amp, device, cfg.batch_size)


def cpu_has_bf16() -> bool:
    """oneDNN's own check for native bf16 (avx512_bf16 or AMX); without it bf16 is far slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(amp: str, device: torch.device, batch_size: int = 64) -> torch.dtype | None:
    """The autocast dtype for config `amp` on `device`, or None for fp32; a UserError where unsupported.

    auto: on a CPU, bf16 where it is native (measured 1.2-2x faster there, benchmarks/NOTES.md); on a
    GPU, fp32 for small launch-bound batches and bf16 (fp16 on GPUs without bf16) from
    AUTO_AMP_MIN_BATCH_CUDA samples on."""
    if amp == "none":
        return None
    cuda = device.type == "cuda"
    bf16 = torch.cuda.is_bf16_supported() if cuda else cpu_has_bf16()
    if amp == "auto":
        if cuda:
            return None if batch_size < AUTO_AMP_MIN_BATCH_CUDA else (torch.bfloat16 if bf16 else torch.float16)
        return torch.bfloat16 if bf16 else None
    if amp == "fp16" and not cuda:
        raise UserError("amp=fp16 needs a CUDA GPU; on CPU use amp=bf16 (where supported) or amp=none")
    if amp == "bf16" and not bf16:
        raise UserError(f"amp=bf16: this {'GPU' if cuda else 'CPU'} has no native bf16 (avx512_bf16/AMX), where it "
                        "is slower than fp32; use amp=none or amp=auto")
    return torch.float16 if amp == "fp16" else torch.bfloat16


def is_image_tensor(data) -> bool:
    return isinstance(data, TensorData) and data.x.dim() == 4 and data.x.dtype == torch.uint8


def uses_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_model_accepts(rt: Runtime, samples: list, classes: list[str]) -> None:
    """A forward pass and the loss on two samples of each (x, y) batch (training inputs after
    augmentation, evaluation inputs), so that a mismatch is a clear error, not a traceback mid-run."""
    model, criterion = rt.model, rt.criterion
    model.eval()
    for x, y in samples:
        x, y = x[:2], y[:2]
        tta.check_inputs(rt.cfg.tta, x.shape)  # also inputs that come from a Dataset, not tensors
        try:
            with torch.no_grad():
                out = model(x)
        except Exception as e:
            raise UserError(f"the model does not accept inputs of shape {tuple(x.shape[1:])}: "
                            f"{first_line(e)}") from e
        if criterion.index_targets and (out.dim() != 2 or out.shape[1] != len(classes)):
            raise UserError(f"the model outputs shape {tuple(out.shape[1:])} but the data have {len(classes)} classes")
        try:
            criterion(out.float(), y)
        except (RuntimeError, ValueError) as e:
            raise UserError(f"loss '{criterion.name}' does not fit the model's output shape {tuple(out.shape[1:])} "
                            f"and targets {y.dtype} {tuple(y.shape[1:])}: {first_line(e)}") from e
