"""The fast path: tensors that live on the training device, served in seeded shuffled batches.

Each epoch draws one permutation from a `torch.Generator`; a batch is an `index_select` on the
device plus a fused uint8 -> float normalisation, so no per-sample Python, PIL or worker process
is involved. The loader's state (generator state at the start of the epoch, batches served) goes
into checkpoints, so a resumed run sees exactly the batches the uninterrupted run would.
"""
from __future__ import annotations

from typing import Iterator

import torch

from . import TensorData


class Normalize:
    """uint8 (B, C, H, W) -> float32 ((x / 255) - mean) / std in one fused op; floats pass through."""

    def __init__(self, mean: list[float], std: list[float], channels: int, device: torch.device,
                 channels_last: bool = False):
        mean = mean or [0.0] * channels
        std = std or [1.0] * channels
        if len(mean) == 1:
            mean, std = mean * channels, std * channels if len(std) == 1 else std
        if len(mean) != channels or len(std) != channels:
            from ..errors import UserError

            raise UserError(f"mean/std need 1 or {channels} values, got {len(mean)} and {len(std)}")
        m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * s)  # (1, C, 1, 1)
        self.shift = -m / s
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            return x
        x = x.contiguous(memory_format=self.memory_format)  # a no-op unless channels_last
        return torch.addcmul(self.shift, x.float(), self.scale)


class SeededEpochs:
    """Per-epoch seeded order, position within the epoch and its checkpointable state.

    Shared by the device path (TensorBatches) and the DataLoader path (LoaderBatches), so both
    draw the same permutation for the same seed and resume the same way.

    Under torchrun (`world` processes) every rank draws the same permutation and batch i is the
    i-th slice of `batch_size * world` samples, of which rank r takes the r-th share: each
    optimizer step sees the same samples as one process with a `world` times larger batch. A
    final global batch smaller than `world` (some rank would get no sample) is dropped.
    (torch's DistributedSampler pads the last batch with repeated samples instead, which would
    break that equality.)
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool, rank: int = 0,
                 world: int = 1):
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.rank, self.world = rank, world
        self.global_batch = batch_size * world
        self.global_size = 0  # samples in the global batch last served, over all ranks
        self.generator = torch.Generator().manual_seed(seed)  # CPU generator: same draws on any device
        self.position = 0  # batches served in the current epoch; 0 between epochs
        self.epochs_started = 0
        self._epoch_state = self.generator.get_state()  # generator state before this epoch's draw
        self._resume_position = 0

    def __len__(self) -> int:
        """Batches per epoch (global batches: the same count on every rank)."""
        full, rest = divmod(self.n, self.global_batch)
        return full + (not self.drop_last and rest >= self.world)

    def bounds(self, i: int) -> tuple[int, int]:
        """[lo, hi) positions in the epoch's order of this rank's share of batch i; sets global_size."""
        lo = i * self.global_batch
        size = min(self.global_batch, self.n - lo)
        base, extra = divmod(size, self.world)  # shares differ by at most one sample
        lo += self.rank * base + min(self.rank, extra)
        self.global_size = size
        return lo, lo + base + (self.rank < extra)

    @property
    def start_position(self) -> int:
        """Where the next epoch() starts: 0, or the batch a resumed run continues from."""
        return self._resume_position

    def begin_epoch(self) -> tuple[int, int, torch.Tensor]:
        """(first batch, epoch index, sample order) for a new pass."""
        start, self._resume_position = self._resume_position, 0
        self._epoch_state = self.generator.get_state()
        epoch, self.epochs_started = self.epochs_started, self.epochs_started + 1
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        return start, epoch, order

    def state_dict(self) -> dict:
        """Between epochs: the generator as it is. Mid-epoch: as it was before this epoch's draw."""
        state = self._epoch_state if self.position else self.generator.get_state()
        epochs = self.epochs_started - 1 if self.position else self.epochs_started
        return {"generator": state.clone(), "position": self.position, "epochs_started": epochs}

    def load_state_dict(self, state: dict) -> None:
        # a CPU ByteTensor whatever map location the checkpoint was read with
        self.generator.set_state(state["generator"].detach().to("cpu", torch.uint8).clone())
        self._resume_position = int(state["position"])
        self.epochs_started = int(state.get("epochs_started", 0))


class TensorBatches(SeededEpochs):
    """Batches of (x, y) from device-resident tensors; `epoch()` yields one pass."""

    def __init__(self, data: TensorData, batch_size: int, *, device: torch.device, shuffle: bool,
                 seed: int = 0, drop_last: bool = False, transform=None, augment=None, rank: int = 0,
                 world: int = 1):
        super().__init__(len(data), batch_size, shuffle, seed, drop_last, rank, world)
        self.source = data
        self.x = data.x.to(device)
        self.y = data.y.to(device)
        self.device = device
        self.transform = transform or (lambda x: x)
        self.augment = augment  # BatchAugment: random crop/flip of uint8 batches, seeded per batch

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        start, epoch, order = self.begin_epoch()
        order = order.to(self.device) if self.shuffle else None
        for i in range(start, len(self)):
            lo, hi = self.bounds(i)
            if order is None:
                idx = None
                xb, yb = self.x[lo:hi], self.y[lo:hi]
            else:
                idx = order[lo:hi]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if self.augment is not None:  # ranks draw different crops
                where = idx if idx is not None else torch.arange(lo, hi, device=self.device)
                xb = self.augment(xb, epoch, i * self.world + self.rank, where)
            self.position = i + 1  # counted before the yield: a checkpoint taken now resumes after it
            yield self.transform(xb), yb
        self.position = 0

    def example(self, n: int = 8) -> torch.Tensor:
        """The first n training inputs as the model sees them (no augmentation, no RNG drawn)."""
        return self.transform(self.x[:n])

    def sample(self, n: int, augmented: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the first n samples; augmented with the batch augmentation's own seeded draws."""
        x = self.x[:n]
        if augmented and self.augment is not None:
            x = self.augment(x, epoch=0, batch=0, index=torch.arange(len(x), device=x.device))
        return self.transform(x), self.y[:n]
