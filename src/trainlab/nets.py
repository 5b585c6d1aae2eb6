"""nn.Module classes of the notes' models that are more than a Sequential (imported when built)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MnistCNN(nn.Module):
    """The notes' MNIST CNN (003): two 5x5 convs with max-pool and ReLU, then Linear(320, 10)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.pooling = nn.MaxPool2d(2)
        self.fc = nn.Linear(320, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, classes)
        x = F.relu(self.pooling(self.conv1(x)))  # (B, 10, 12, 12)
        x = F.relu(self.pooling(self.conv2(x)))  # (B, 20, 4, 4)
        return self.fc(x.flatten(1))


class MnistMLP(nn.Module):
    """The notes' MNIST fully connected net (003): 784-512-256-128-64-10 with ReLU."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(784, 512), nn.Linear(512, 256), nn.Linear(256, 128)
        self.l4, self.l5 = nn.Linear(128, 64), nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) or (B, 784)
        x = x.reshape(-1, 784)
        for layer in (self.l1, self.l2, self.l3, self.l4):
            x = F.relu(layer(x))
        return self.l5(x)


class Scale(nn.Module):
    """Multiplies by a constant: keeps the logits of the fast CIFAR net small at initialisation."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def identity_init(conv: nn.Conv2d) -> nn.Conv2d:
    """airbench94's partial identity init: the first `in_channels` filters pass their input channel
    through (a Dirac kernel), the others keep torch's default init; the bias starts at zero."""
    with torch.no_grad():
        n = min(conv.in_channels, conv.out_channels)
        nn.init.dirac_(conv.weight[:n])
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


def batch_norm(channels: int, momentum: float, eps: float, scale: bool) -> nn.BatchNorm2d:
    """BatchNorm2d whose scale (weight, 1 at init) trains only if `scale`; its bias always trains."""
    bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
    bn.weight.requires_grad_(scale)
    return bn


def conv_group(cin: int, cout: int, bn: dict) -> nn.Sequential:
    """airbench94's ConvGroup: conv, max-pool 2, BN, GELU, conv, BN, GELU (spatial size halves, rounded down)."""
    return nn.Sequential(
        identity_init(nn.Conv2d(cin, cout, 3, padding=1, bias=False)), nn.MaxPool2d(2), batch_norm(cout, **bn),
        nn.GELU(), identity_init(nn.Conv2d(cout, cout, 3, padding=1, bias=False)), batch_norm(cout, **bn), nn.GELU(),
    )


class FastCifarNet(nn.Module):
    """airbench94's net for fast CIFAR-10, as its write-up describes it: (B, 3, 32, 32) -> (B, classes).

    A 2x2 conv stem without padding, 2 x 3 x 2 x 2 = 24 channels (the width whitening fills with
    12 patch directions and their negations, whiten=true), GELU; three conv groups of widths
    64/256/256 (31 -> 15 -> 7 -> 3 pixels); a global max-pool; a linear head without bias; the
    logits scaled by 1/9. BatchNorm: torch momentum 0.4 (airbench's 0.6 is the running average's
    decay, 1 - torch's), eps 1e-12, scale frozen at 1 unless `bn_scale` (the bias trains)."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (64, 256, 256), stem: int = 24,
                 bn_momentum: float = 0.4, bn_eps: float = 1e-12, bn_scale: bool = False):
        super().__init__()
        bn = dict(momentum=bn_momentum, eps=bn_eps, scale=bn_scale)
        self.stem = nn.Sequential(identity_init(nn.Conv2d(3, stem, 2, padding=0, bias=True)), nn.GELU())
        self.groups = nn.Sequential(conv_group(stem, widths[0], bn), conv_group(widths[0], widths[1], bn),
                                    conv_group(widths[1], widths[2], bn))
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(widths[2], num_classes, bias=False),
                                  Scale(1 / 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) -> (B, 24, 31, 31) -> ... -> (B, classes)
        return self.head(self.groups(self.stem(x)))
