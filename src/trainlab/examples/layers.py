"""Layer demonstrations of notes 002/003/004: convolution, max-pooling and activations on the
notes' small hand-written inputs, so each printed tensor can be checked by hand.

torch is imported inside the functions, so that registering (listing) the examples does not load it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import register_example
from ._util import fmt

if TYPE_CHECKING:
    import torch

# Notes 002: the 5x5 input and 3x3 kernel used for both the convolution and the pooling demos.
INPUT_5X5 = [[1, 2, 0, 3, 1],
             [0, 1, 2, 3, 1],
             [1, 2, 1, 0, 0],
             [5, 2, 3, 1, 1],
             [2, 1, 0, 1, 1]]
KERNEL_3X3 = [[1, 2, 1],
              [0, 1, 0],
              [2, 1, 0]]

# Notes 003 (Padding / stride): another 5x5 input, with the kernel 1..9.
INPUT_003 = [3, 4, 6, 5, 7,
             2, 4, 6, 8, 2,
             1, 6, 7, 8, 4,
             9, 7, 4, 6, 2,
             3, 7, 5, 4, 1]

# Notes 003 (down-sampling): the 4x4 input of the MaxPool2d(2) demo.
INPUT_4X4 = [3, 4, 6, 5,
             2, 4, 6, 8,
             1, 6, 7, 8,
             9, 7, 4, 6]


def as_image(values, size: int) -> torch.Tensor:
    """A (1, 1, size, size) float batch: conv and pool layers take (N, C, H, W)."""
    import torch

    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, size, size)


def conv_1to9(stride: int, padding: int) -> torch.Tensor:
    """The notes-003 layer: Conv2d(1, 1, 3, bias=False) whose weight is set to 1..9."""
    import torch
    from torch import nn

    layer = nn.Conv2d(1, 1, kernel_size=3, stride=stride, padding=padding, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(1.0, 10.0).reshape(1, 1, 3, 3))
        return layer(as_image(INPUT_003, 5))


@register_example("conv-demo", "F.conv2d stride 1/2 and padding 1 on the 5x5 input; kernel 1..9 (003)")
def conv_demo(out_dir: Path) -> dict:
    import torch.nn.functional as F

    x, kernel = as_image(INPUT_5X5, 5), as_image(KERNEL_3X3, 3)
    results = {
        "stride1": F.conv2d(x, kernel, stride=1),
        "stride2": F.conv2d(x, kernel, stride=2),
        "padding1": F.conv2d(x, kernel, stride=1, padding=1),
        "kernel19_padding1": conv_1to9(stride=1, padding=1),
        "kernel19_stride2": conv_1to9(stride=2, padding=0),
    }
    for key, value in results.items():
        print(f"{key}: {fmt(value[0, 0])}")
    return results


@register_example("pool-demo", "MaxPool2d(3) with ceil_mode True/False on 5x5; MaxPool2d(2) on 4x4")
def pool_demo(out_dir: Path) -> dict:
    from torch import nn

    x = as_image(INPUT_5X5, 5)
    results = {
        # ceil_mode=True keeps the partial windows at the right and bottom edges.
        "ceil_true": nn.MaxPool2d(kernel_size=3, ceil_mode=True)(x),
        "ceil_false": nn.MaxPool2d(kernel_size=3, ceil_mode=False)(x),
        "pool2_4x4": nn.MaxPool2d(kernel_size=2)(as_image(INPUT_4X4, 4)),
    }
    for key, value in results.items():
        print(f"{key}: {fmt(value[0, 0])}")
    return results


@register_example("activation-demo", "ReLU and Sigmoid on [[1, -0.5], [-1, 3]]")
def activation_demo(out_dir: Path) -> dict:
    import torch
    from torch import nn

    x = torch.tensor([[1, -0.5], [-1, 3]])
    print(f"input shape as an image batch: {tuple(x.reshape(-1, 1, 2, 2).shape)}")
    relu, sigmoid = nn.ReLU(inplace=False)(x), nn.Sigmoid()(x)
    print(f"ReLU: {fmt(relu)}")
    print(f"Sigmoid: {fmt(sigmoid)}")
    return {"input": x, "relu": relu, "sigmoid": sigmoid}
