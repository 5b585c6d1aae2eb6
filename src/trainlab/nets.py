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


def conv_group(cin: int, cout: int) -> nn.Sequential:
    """airbench94's ConvGroup: conv, max-pool 2, BN, GELU, conv, BN, GELU (spatial size halves)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(cout), nn.GELU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU(),
    )


class FastCifarNet(nn.Module):
    """A small ResNet-era net for fast CIFAR-10, after airbench94: (B, 3, 32, 32) -> (B, classes)."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (64, 256, 256)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.GELU())
        self.groups = nn.Sequential(conv_group(32, widths[0]), conv_group(widths[0], widths[1]),
                                    conv_group(widths[1], widths[2]))  # 32 -> 16 -> 8 -> 4 pixels
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(widths[2], num_classes, bias=False),
                                  Scale(1 / 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.groups(self.stem(x)))
