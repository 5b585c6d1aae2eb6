"""Choose how batches are served: the device-resident fast path or the DataLoader fallback.

Decoded tensors whose transforms all have batched versions stay on the training device
(`TensorBatches`, random crop/flip by `BatchAugment`); anything else (a user's torch Dataset,
ColorJitter and friends, image sets over the memory limit) goes through `LoaderBatches`.
Evaluation batches get only the deterministic part: decode-time resizing and Normalize.
"""
from __future__ import annotations

import torch

from . import TensorData
from .batches import Normalize, TensorBatches
from .loader import LoaderBatches
from .transforms import (RANDOM, BatchAugment, Spec, batchable, build_one, decode_size, eval_version,
                         normalize_args, parse_all, per_sample_pipeline, same_size)


def resize_tensors(data: TensorData | None, specs: list[Spec]) -> TensorData | None:
    """Apply deterministic transforms (Resize, CenterCrop, Grayscale, ...) once to a whole uint8
    (N, C, H, W) tensor; torchvision's v2 transforms take a batch of images as one tensor."""
    steps = [s for s in specs if s.name not in ("ToTensor", "ToImage", "Normalize")]
    if data is None or not steps:
        return data
    x = data.x
    for s in steps:
        if not same_size(s, *x.shape[-2:]):
            x = build_one(s)(x)
    return data if x is data.x else TensorData(x.contiguous(), data.y)


def plan_batches(train, val, *, transforms: list[str], mean: list[float], std: list[float], batch_size: int,
                 eval_batch_size: int, seed: int, drop_last: bool, channels_last: bool, workers: int,
                 device: torch.device, evaluation: bool = False, rank: int = 0, world: int = 1):
    """(train_batches, val_batches or None) for TensorData or torch Datasets; with evaluation=True,
    the first is unshuffled and unaugmented. channels_last: serve uint8 image batches NHWC (the
    runtime decided it and converted the model)."""
    specs = parse_all(transforms)
    eval_specs = eval_version(specs)
    specs = eval_specs if evaluation else specs
    if not isinstance(train, TensorData):
        pipeline = per_sample_pipeline(specs, mean, std) if specs or mean else None
        eval_pipeline = per_sample_pipeline(eval_specs, mean, std) if eval_specs or mean else None
        loader = LoaderBatches(train, batch_size, device=device, shuffle=not evaluation, seed=seed, drop_last=drop_last,
                               pipeline=pipeline, eval_pipeline=eval_pipeline, workers=workers, rank=rank, world=world)
        val_loader = val is not None and LoaderBatches(val, eval_batch_size, device=device, shuffle=False,
                                                       pipeline=eval_pipeline, eval_pipeline=eval_pipeline, workers=workers)
        return loader, val_loader or None
    decode, rest = decode_size(specs)
    train = resize_tensors(train, decode)
    val = resize_tensors(val, eval_specs)  # all deterministic: applied once, exactly as predict/eval do
    mean, std = normalize_args(rest, mean, std)
    image = train.x.dtype == torch.uint8
    nhwc = channels_last and image and train.x.dim() == 4
    normalize = Normalize(mean, std, train.x.shape[1], device, nhwc) if image else None
    val_batches = val is not None and TensorBatches(val, eval_batch_size, device=device, shuffle=False,
                                                    transform=normalize)
    if batchable(rest):
        augment = BatchAugment(rest, seed) if any(s.name in RANDOM for s in rest) else None
        train_batches = TensorBatches(train, batch_size, device=device, shuffle=not evaluation, seed=seed,
                                      drop_last=drop_last, transform=normalize, augment=augment, rank=rank, world=world)
    else:
        train_batches = LoaderBatches(train, batch_size, device=device, shuffle=True, seed=seed, drop_last=drop_last,
                                      pipeline=per_sample_pipeline(rest, mean, std),
                                      eval_pipeline=per_sample_pipeline(eval_version(rest), mean, std), workers=workers,
                                      rank=rank, world=world)
    return train_batches, val_batches or None
