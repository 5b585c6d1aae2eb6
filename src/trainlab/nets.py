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
