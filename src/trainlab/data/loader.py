"""The fallback path: a torch DataLoader with workers, for data or transforms the fast path cannot take.

Used for any torch Dataset a user passes to `fit()`, for transforms with no batched version
(ColorJitter, RandomResizedCrop, ...) and for image sets over the memory limit. The sampler draws
the same seeded permutation as `TensorBatches`, and each sample's random transform is seeded from
(seed, epoch, index), so results do not depend on the number of workers and resume stays exact.
"""
from __future__ import annotations

import os
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import UserError
from . import TensorData
from .batches import SeededEpochs


class SeededSamples(Dataset):
    """source[idx] through a per-sample pipeline, with the torch RNG seeded for that sample."""

    def __init__(self, source, pipeline=None):
        self.source, self.pipeline = source, pipeline

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]):
        seed, idx = key
        if isinstance(self.source, TensorData):
            x, y = self.source.x[idx], self.source.y[idx]
        else:
            x, y = self.source[idx]
        if self.pipeline is not None:
            with torch.random.fork_rng(devices=[]):  # leave the caller's RNG untouched
                torch.manual_seed(seed)
                x = self.pipeline(x)
        if isinstance(y, str):
            raise UserError(f"sample {idx} has label {y!r}: labels must be class indices (int)")
        return x, y


class _EpochKeys(Sampler):
    """Keys (sample seed, index) for the owner's current epoch, from its start position on."""

    def __init__(self, owner: "LoaderBatches"):
        self.owner = owner

    def __iter__(self):
        o = self.owner
        for i in range(o.first_batch, len(o)):  # this rank's share of each remaining batch
            lo, hi = o.bounds(i)
            for pos in range(lo, hi):
                yield hash((o.seed, o.epoch_index, pos)) & (2**63 - 1), int(o.order[pos])


class LoaderBatches(SeededEpochs):
    """Same interface as TensorBatches (epoch(), position, state_dict(), example()), over a DataLoader."""

    def __init__(self, source, batch_size: int, *, device: torch.device, shuffle: bool, seed: int = 0,
                 drop_last: bool = False, pipeline=None, eval_pipeline=None, workers: int = -1, rank: int = 0,
                 world: int = 1):
        super().__init__(len(source), batch_size, shuffle, seed, drop_last, rank, world)
        self.source, self.device, self.seed = source, device, seed
        self.eval_samples = SeededSamples(source, eval_pipeline)
        self.train_samples = SeededSamples(source, pipeline)
        self.order, self.first_batch, self.epoch_index = torch.arange(len(source)), 0, 0
        workers = min(2, os.cpu_count() or 1) if workers < 0 else workers
        # the sampler yields only the counted batches' samples, so the DataLoader keeps every one
        self.loader = DataLoader(self.train_samples, batch_size=batch_size, sampler=_EpochKeys(self),
                                 drop_last=False, num_workers=workers, persistent_workers=workers > 0,
                                 pin_memory=device.type == "cuda")

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        start, self.epoch_index, self.order = self.begin_epoch()
        self.first_batch = start  # the sampler reads these when the DataLoader starts
        for i, (xb, yb) in enumerate(self.loader, start):
            self.bounds(i)  # global_size of this batch
            self.position = i + 1
            yield xb.to(self.device, non_blocking=True), torch.as_tensor(yb).to(self.device, non_blocking=True)
        self.position = 0

    def example(self, n: int = 8) -> torch.Tensor:
        """The first n inputs through the evaluation pipeline (no random transform, no RNG drawn)."""
        return self.sample(n)[0]

    def sample(self, n: int, augmented: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the first n samples, through the training pipeline if augmented (its RNG is forked)."""
        samples = self.train_samples if augmented else self.eval_samples
        items = [samples[(0, i)] for i in range(min(n, len(self.source)))]
        x = torch.stack([torch.as_tensor(x) for x, _ in items]).to(self.device)
        return x, torch.as_tensor([y for _, y in items]).to(self.device)
