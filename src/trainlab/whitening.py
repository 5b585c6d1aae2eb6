"""`whiten=true`: the model's first Conv2d becomes a fixed patch-whitening filter bank.

The statistics are those of the k x k patches of the training images as the model sees them
(after Normalize, without augmentation): their covariance C (d x d, d = channels x k x k) has
eigenvectors v_i and eigenvalues l_i; filter i is v_i / sqrt(l_i + EPS), so the layer's outputs
on those patches have (nearly) identity covariance. A conv with 2d output channels gets the d
filters and their negations (airbench94's layout: the GELU after it then sees both signs of
every direction); one with fewer gets the top ones, largest eigenvalue first; one with between
d and 2d gets the d filters and the negations of the top ones. The bias, if any, is set so that
the outputs have zero mean on those patches, and still trains; the weight is frozen
(requires_grad=False), so it stays out of the optimizer.

Done once, on a fresh run, before the optimizer is built and before the first checkpoint: the
checkpoint holds the whitened weights, so resume, eval and predict need nothing else. A resumed
run only freezes the weight again (the checkpoint restores its values).
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import UserError

MAX_IMAGES = 5000  # airbench94 whitens from the first 5,000 training images
MAX_INPUT_BYTES = 256 * 2**20  # of float32 inputs held at once: fewer images when they are large
EPS = 5e-4  # added to each eigenvalue (of Normalize'd inputs): directions of tiny variance are not blown up
CHUNK = 512  # images cut into float64 patches at a time (CIFAR: 512 x 12 x 961 x 8 B = 47 MB)


def first_conv(model: nn.Module) -> nn.Conv2d:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise UserError(f"whiten=true needs a model with an nn.Conv2d; {type(model).__name__} has none")
    if conv.groups != 1:
        raise UserError(f"whiten=true: the first Conv2d has groups={conv.groups}; whitening needs groups=1")
    return conv


def setup(rt, batches, fresh: bool) -> nn.Conv2d:
    """Whiten (fresh run) and freeze the first Conv2d of `rt.model`, from `batches`' first training
    images without augmentation; under torchrun the model is wrapped again, since DDP must know
    which parameters train."""
    conv = first_conv(rt.model)
    if fresh:
        x = batches.sample(image_count(batches))[0]
        whiten(conv, x)
    conv.weight.requires_grad_(False)
    if rt.dist.active:
        from .distributed import wrap

        rt.train_model = wrap(rt.model, rt.dist, rt.device)
    return conv


def image_count(batches) -> int:
    """At most MAX_IMAGES training images, fewer where they would not fit in MAX_INPUT_BYTES."""
    x = batches.sample(1)[0]  # (1, C, H, W) as the model sees it
    if x.dim() != 4:
        raise UserError(f"whiten=true needs image inputs (N, C, H, W); the data are {tuple(x.shape[1:])} per sample")
    return max(1, min(MAX_IMAGES, len(batches.source), MAX_INPUT_BYTES // (4 * x[0].numel())))


@torch.no_grad()
def whiten(conv: nn.Conv2d, x: torch.Tensor, eps: float = EPS) -> None:
    """Set `conv` (weight and bias) to whiten the patches of images `x` (N, C, H, W), in place."""
    if x.dim() != 4 or x.shape[1] != conv.in_channels:
        raise UserError(f"whiten=true needs images with {conv.in_channels} channels (N, C, H, W), "
                        f"got {tuple(x.shape)}")
    mean, cov = patch_stats(x, conv.kernel_size, conv.dilation)
    values, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues, eigenvectors as columns
    filters = (vectors / torch.sqrt(values.clamp(min=0) + eps)).T.flip(0)  # (d, d), largest eigenvalue first
    d, out = filters.shape[0], conv.out_channels
    if out > 2 * d:
        raise UserError(f"whiten=true: the first Conv2d has {out} output channels, more than twice its {d} patch "
                        f"dimensions (channels x kernel), which is all whitening can fill")
    bank = torch.cat([filters, -filters])[:out]  # (out, d)
    conv.weight.copy_(bank.reshape(conv.weight.shape).to(conv.weight.dtype))
    if conv.bias is not None:
        conv.bias.copy_((-bank @ mean).to(conv.bias.dtype))  # zero-mean outputs on these patches


def patch_stats(x: torch.Tensor, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)):
    """(mean (d,), covariance (d, d)) in float64 of every k x k patch (stride 1, no padding) of x,
    in the layout of a conv weight flattened to (out, C * kh * kw)."""
    (kh, kw), (dh, dw) = kernel, dilation
    h, w = x.shape[2] - dh * (kh - 1), x.shape[3] - dw * (kw - 1)  # patch positions per image
    total, first, second = 0, 0.0, 0.0
    for part in x.split(CHUNK):
        part = part.double()
        shifted = [part[:, :, i * dh:i * dh + h, j * dw:j * dw + w] for i in range(kh) for j in range(kw)]
        p = torch.stack(shifted, 2).permute(1, 2, 0, 3, 4).reshape(x.shape[1] * kh * kw, -1)  # (d, B * h * w)
        first, second, total = first + p.sum(1), second + p @ p.T, total + p.shape[1]
    mean = first / total
    return mean, second / total - torch.outer(mean, mean)
