"""Test-time augmentation: a model's outputs averaged over mirrored and shifted copies of an image batch.

`cfg.tta` (none | flip | translate) applies to every evaluation and prediction, through
`Runtime.inference_model()`, so validation, the test at the end of a run, `trainlab eval`, `report`
and `predict` cannot disagree. The levels follow the public airbench write-ups (tta_level 1 and 2):

- flip: the mean of the outputs on x and on x mirrored left-right;
- translate: 0.5 × flip(x) + 0.25 × flip(x shifted one pixel up-left) + 0.25 × flip(x shifted one
  pixel down-right), each shift made by reflect-padding one pixel and cropping back to H × W.

Raw outputs (logits) are averaged, in float32. Each view is one forward pass of the whole batch on
the device: no per-sample Python, and memory stays that of one batch (a concatenated batch of all
six views of translate would need six times the activations).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError

def forward(model: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """The outputs of `model` on the image batch `x` (B, C, H, W) under test-time augmentation `mode`."""
    if mode == "none":
        return model(x)
    check_inputs(mode, x.shape)
    if mode == "flip":
        return flip_mean(model, x)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")  # (B, C, H + 2, W + 2)
    h, w = x.shape[-2:]
    up_left = same_format(padded[..., 2:, 2:], x)  # pixel (i, j) shows x[i + 1, j + 1]: content moved up-left
    down_right = same_format(padded[..., :h, :w], x)  # pixel (i, j) shows x[i - 1, j - 1]
    return 0.5 * flip_mean(model, x) + 0.25 * flip_mean(model, up_left) + 0.25 * flip_mean(model, down_right)


def flip_mean(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(outputs on x + outputs on x mirrored left-right) / 2, in float32."""
    return 0.5 * model(x).float() + 0.5 * model(x.flip(-1)).float()


def same_format(view: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A cropped view made dense in the memory format of `like` (NHWC stays NHWC for the convolutions)."""
    nhwc = like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous()
    return view.contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)


def check_inputs(mode: str, shape: tuple[int, ...] | torch.Size) -> None:
    """A UserError unless `mode` is none or the inputs are image batches (B, C, H, W) it can mirror and shift."""
    if mode == "none":
        return
    if len(shape) != 4:
        raise UserError(f"tta={mode} is for image inputs (batch, channels, height, width); these inputs have shape "
                        f"{tuple(shape[1:])} (tables and feature vectors): use tta=none")
    if mode == "translate" and min(shape[-2:]) < 2:
        raise UserError(f"tta=translate needs images of at least 2x2 pixels, got {tuple(shape[-2:])}")


class TTA(nn.Module):
    """`model` under test-time augmentation `mode`, as a module evaluation code can call like the model."""

    def __init__(self, model: nn.Module, mode: str):
        super().__init__()
        self.model, self.mode = model, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward(self.model, x, self.mode)


def wrap(model: nn.Module, mode: str) -> nn.Module:
    """`model` itself for mode none (the plain path, untouched), else `model` under TTA."""
    return model if mode == "none" else TTA(model, mode)
