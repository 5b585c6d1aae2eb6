"""Every model of the study notes, registered by name (the registry itself is registry.py).

Builders are plain functions registered with `@register_model(name, input_shape=...)`; they take
plain arguments (`num_classes`, ...) and return an `nn.Module`. They import torch themselves, so
that listing the registry (`trainlab ls`) does not load it. `input_shape` is one sample's shape
(C, H, W) or (F,), used by `summary` and to check data against the model.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import MODELS, ModelEntry, build_model, get_model_entry, register_model

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MODELS", "ModelEntry", "build_model", "get_model_entry", "register_model"]


@register_model("mnist-cnn", input_shape=(1, 28, 28))
def mnist_cnn(num_classes: int = 10) -> nn.Module:
    """Notes 003 MNIST CNN: Conv(1,10,5)-Pool-ReLU-Conv(10,20,5)-Pool-ReLU-Linear(320,10)."""
    from .nets import MnistCNN

    return MnistCNN(num_classes)


@register_model("mnist-mlp", input_shape=(1, 28, 28))
def mnist_mlp(num_classes: int = 10) -> nn.Module:
    """Notes 003 MNIST MLP: 784-512-256-128-64-10, ReLU."""
    from .nets import MnistMLP

    return MnistMLP(num_classes)


@register_model("diabetes-net", input_shape=(8,))
def diabetes_net(num_classes: int = 1) -> nn.Module:
    """Notes 003 diabetes net: 8-6-4-1 with ReLU, ReLU, Sigmoid (a probability for BCELoss)."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4), nn.ReLU(),
        nn.Linear(4, num_classes), nn.Sigmoid(),
    )


@register_model("cifar10-quick", input_shape=(3, 32, 32))
def cifar10_quick(num_classes: int = 10) -> nn.Module:
    """Notes 000/002/004 CIFAR10-quick ('Tudui'): three 5x5 convs with pooling, then 1024-64-10."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 64), nn.Linear(64, num_classes),
    )


@register_model("cifar10-lenet", input_shape=(3, 32, 32))
def cifar10_lenet(num_classes: int = 10) -> nn.Module:
    """Notes 001 LeNet for CIFAR-10: Conv(3,6,5)-ReLU-Pool-Conv(6,16,5)-ReLU-Pool-400-120-84-10."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes),
    )


@register_model("linear-regression", input_shape=(1,))
def linear_regression(num_classes: int = 1) -> nn.Module:
    """Notes 003 linear regression: Linear(1, 1)."""
    from torch import nn

    return nn.Linear(1, num_classes)


@register_model("logistic-regression", input_shape=(1,))
def logistic_regression(num_classes: int = 1) -> nn.Module:
    """Notes 003 logistic regression: Linear(1, 1) + sigmoid."""
    from torch import nn

    return nn.Sequential(nn.Linear(1, num_classes), nn.Sigmoid())


@register_model("two-layer-net", input_shape=(1000,))
def two_layer_net(num_classes: int = 10, hidden: int = 100) -> nn.Module:
    """Notes 001 two-layer net: Linear(1000, 100)-ReLU-Linear(100, 10)."""
    from torch import nn

    return nn.Sequential(nn.Linear(1000, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


@register_model("cifar10-fast", input_shape=(3, 32, 32))
def cifar10_fast(num_classes: int = 10) -> nn.Module:
    """airbench94's net: 2x2 stem (24 ch, whiten=true), conv groups 64/256/256 with BN and GELU, max-pool, /9."""
    from .nets import FastCifarNet

    return FastCifarNet(num_classes)


@register_model("folder-cnn", input_shape=(3, 64, 64))
def folder_cnn(num_classes: int = 2, input_shape: tuple[int, ...] = (3, 64, 64)) -> nn.Module:
    """Default model for image folders: three conv-BN-ReLU-pool blocks, global average pool, Linear."""
    from torch import nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(input_shape[0], 32), *block(32, 64), *block(64, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))


@register_model("table-mlp", input_shape=(8,))
def table_mlp(num_classes: int = 1, input_shape: tuple[int, ...] = (8,), hidden: int = 64) -> nn.Module:
    """Default model for CSV tables: features-64-64-outputs with ReLU (outputs: classes, or 1 for regression)."""
    from torch import nn

    return nn.Sequential(nn.Linear(input_shape[0], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))

