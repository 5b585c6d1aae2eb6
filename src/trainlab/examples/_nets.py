"""The torch classes of the examples: MyReLU (notes 001), DynamicNet (notes 001) and the notes-003
LogisticRegression.

They subclass torch types, so defining them imports torch. They live apart from the example modules,
which import this one only inside the functions that run an example: registering and listing the
examples (`trainlab ls`) must not pay for importing torch.
"""
from __future__ import annotations

import random

import torch
from torch import nn


class MyReLU(torch.autograd.Function):
    """The notes' ReLU as an autograd Function: forward clamps, backward zeroes the gradient where
    the input was negative (the input is saved for exactly that)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        grad_x = grad_output.clone()
        grad_x[x < 0] = 0
        return grad_x


class DynamicNet(nn.Module):
    """Notes 001: the middle Linear is applied 0-3 times at random in each forward pass; the graph
    is rebuilt every call, so ordinary Python control flow decides the depth."""

    def __init__(self, d_in: int, hidden: int, d_out: int, rng: random.Random):
        super().__init__()
        self.input_linear = nn.Linear(d_in, hidden)
        self.middle_linear = nn.Linear(hidden, hidden)
        self.output_linear = nn.Linear(hidden, d_out)
        self.rng = rng  # a private generator: the depths repeat without touching global `random`
        self.depths: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_relu = self.input_linear(x).clamp(min=0)
        depth = self.rng.randint(0, 3)
        self.depths.append(depth)
        for _ in range(depth):
            h_relu = self.middle_linear(h_relu).clamp(min=0)  # the same weights every time
        return self.output_linear(h_relu)


class LogisticRegression(nn.Module):
    """Notes 003: nn.Linear(1, 1) followed by a sigmoid."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(x))  # a probability, which BCELoss expects
