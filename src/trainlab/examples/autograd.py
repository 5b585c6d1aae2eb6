"""Notes 001: the two-layer net written five ways, a custom autograd Function, gradient
accumulation, and a dynamic net that reuses one layer a random number of times.

All of them fit random x (64x1000) to random y (64x10) with a 1000-100-10 ReLU net and a summed
squared error, exactly as the notes do; the data and weights are seeded so the runs repeat.

torch, numpy and the models registry are imported inside the functions (MyReLU and DynamicNet live
in `_nets`), so that registering (listing) the examples does not load them.
"""
from __future__ import annotations

import copy
import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from . import register_example
from ._util import seeded

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

N, D_IN, H, D_OUT = 64, 1000, 100, 10
STEPS = 500


def random_problem(seed: int = 0) -> tuple[np.ndarray, ...]:
    """x (N, D_IN), y (N, D_OUT) and the raw weights w1, w2, float64, as the numpy warm-up draws them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, D_IN)), rng.standard_normal((N, D_OUT)),
            rng.standard_normal((D_IN, H)), rng.standard_normal((H, D_OUT)))


def numpy_gradients(x, y, w1, w2) -> tuple[float, np.ndarray, np.ndarray]:
    """Forward and hand-written backward pass of the numpy warm-up: loss, dloss/dw1, dloss/dw2."""
    import numpy as np

    h = x.dot(w1)
    h_relu = np.maximum(h, 0)
    y_pred = h_relu.dot(w2)
    loss = float(np.square(y_pred - y).sum())
    grad_y_pred = 2 * (y_pred - y)
    grad_w2 = h_relu.T.dot(grad_y_pred)
    grad_h = grad_y_pred.dot(w2.T)
    grad_h[h < 0] = 0  # ReLU passes the gradient only where its input was positive
    return loss, x.T.dot(grad_h), grad_w2


def train_numpy(x, y, w1, w2, lr: float = 1e-6) -> list[float]:
    w1, w2, losses = w1.copy(), w2.copy(), []
    for _ in range(STEPS):
        loss, grad_w1, grad_w2 = numpy_gradients(x, y, w1, w2)
        losses.append(loss)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return losses


def train_raw_tensors(x, y, w1, w2, relu, lr: float = 1e-6) -> list[float]:
    """Notes 001 'Autograd' and 'Define my autograd function': raw tensors, manual update."""
    import torch

    w1, w2 = w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)
    losses = []
    for _ in range(STEPS):
        loss = (relu(x.mm(w1)).mm(w2) - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():  # the update itself must not become part of the graph
            for w in (w1, w2):
                w -= lr * w.grad
                w.grad.zero_()
    return losses


def train_sequential(model: nn.Module, x, y, lr: float = 1e-4) -> list[float]:
    """Notes 001 'nn': MSELoss(sum) and a manual update over model.parameters()."""
    import torch
    from torch import nn

    loss_fn, losses = nn.MSELoss(reduction="sum"), []
    for _ in range(STEPS):
        loss = loss_fn(model(x), y)
        losses.append(loss.item())
        model.zero_grad()  # backward() adds to .grad, so clear last step's gradient first
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= lr * param.grad
    return losses


def train_with_optimizer(model: nn.Module, optimizer, x, y) -> list[float]:
    from torch import nn

    loss_fn, losses = nn.MSELoss(reduction="sum"), []
    for _ in range(STEPS):
        loss = loss_fn(model(x), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def hand_vs_autograd(x, y, w1, w2) -> float:
    """Largest relative difference between the numpy hand-written gradients and autograd's, on
    the same float64 weights (float64 so that only a real mistake could show up)."""
    import numpy as np
    import torch

    _, grad_w1, grad_w2 = numpy_gradients(x, y, w1, w2)
    t_w1 = torch.tensor(w1, requires_grad=True)
    t_w2 = torch.tensor(w2, requires_grad=True)
    loss = (torch.tensor(x).mm(t_w1).clamp(min=0).mm(t_w2) - torch.tensor(y)).pow(2).sum()
    loss.backward()
    return max(float(np.abs(hand - auto.numpy()).max() / np.abs(auto.numpy()).max())
               for hand, auto in ((grad_w1, t_w1.grad), (grad_w2, t_w2.grad)))


@register_example("two-layer-net", "001: numpy backprop, autograd, MyReLU, nn.Sequential, Adam")
def two_layer_net(out_dir: Path) -> dict:
    import torch

    from ..models import build_model
    from ._nets import MyReLU

    x, y, w1, w2 = random_problem(seed=0)
    tx, ty, tw1, tw2 = (torch.from_numpy(a).float() for a in (x, y, w1, w2))
    losses = {
        "numpy": train_numpy(x, y, w1, w2),
        "autograd": train_raw_tensors(tx, ty, tw1, tw2, relu=lambda t: t.clamp(min=0)),
        "my_relu": train_raw_tensors(tx, ty, tw1, tw2, relu=MyReLU.apply),
    }
    with seeded(0):
        model = build_model("two-layer-net")
    losses["sequential"] = train_sequential(copy.deepcopy(model), tx, ty)
    adam_model = copy.deepcopy(model)
    adam = torch.optim.Adam(adam_model.parameters(), lr=1e-4)
    losses["adam"] = train_with_optimizer(adam_model, adam, tx, ty)
    results = {name: {"first_loss": ls[0], "last_loss": ls[-1]} for name, ls in losses.items()}
    for name, r in results.items():
        print(f"{name:<11} loss {r['first_loss']:14.4f} -> {r['last_loss']:.6g} after {STEPS} steps")
    rel_diff = hand_vs_autograd(x, y, w1, w2)
    grads_match = rel_diff < 1e-10
    print(f"hand-written numpy gradients == autograd's: {grads_match} (max relative diff {rel_diff:.2e})")
    return {"losses": results, "grads_match": grads_match, "grad_rel_diff": rel_diff}


@register_example("custom-relu", "001: MyReLU (autograd Function) passes torch.autograd.gradcheck")
def custom_relu(out_dir: Path) -> dict:
    import torch

    from ._nets import MyReLU

    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, dtype=torch.float64, generator=g)
    # ReLU has no derivative at 0: keep every input at least 0.1 away so that gradcheck's finite
    # differences (eps 1e-6) never straddle the kink.
    x = (x + 0.1 * x.sign()).requires_grad_(True)
    passed = torch.autograd.gradcheck(MyReLU.apply, (x,), eps=1e-6, atol=1e-4)
    print(f"gradcheck(MyReLU) on {tuple(x.shape)} float64 inputs: {passed}")
    return {"gradcheck": passed}


def accumulated_vs_big_batch(dtype: torch.dtype, updates: int = 3, steps: int = 8) -> float:
    """Max |param difference| after `updates` Adam updates made (a) from `steps` micro-batches of
    64 with loss/steps accumulated, and (b) from one batch of 64*steps with its loss/steps."""
    import torch
    from torch import nn

    from ..models import build_model

    g = torch.Generator().manual_seed(1)
    x = torch.randn(steps * N, D_IN, generator=g, dtype=dtype)
    y = torch.randn(steps * N, D_OUT, generator=g, dtype=dtype)
    with seeded(1):
        small = build_model("two-layer-net").to(dtype)
    big = copy.deepcopy(small)
    opt_small, opt_big = (torch.optim.Adam(m.parameters(), lr=0.01) for m in (small, big))
    loss_fn = nn.MSELoss(reduction="sum")
    for _ in range(updates):
        for xb, yb in zip(x.split(N), y.split(N)):
            (loss_fn(small(xb), yb) / steps).backward()  # gradients add up in .grad
        opt_small.step()
        opt_small.zero_grad()
        (loss_fn(big(x), y) / steps).backward()
        opt_big.step()
        opt_big.zero_grad()
    return max((a - b).abs().max().item() for a, b in zip(small.parameters(), big.parameters()))


def train_accumulating(steps: int = 8) -> list[float]:
    """The notes' loop: Adam lr 0.01, loss/steps, optimizer.step() every `steps` batches."""
    import torch
    from torch import nn

    from ..models import build_model

    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(N, D_IN, generator=g), torch.randn(N, D_OUT, generator=g)) for _ in range(steps)]
    with seeded(2):
        model = build_model("two-layer-net")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn, losses = nn.MSELoss(reduction="sum"), []
    for n in range(STEPS):
        xb, yb = batches[n % steps]
        loss = loss_fn(model(xb), yb)
        losses.append(loss.item())
        (loss / steps).backward()
        if (n + 1) % steps == 0:
            optimizer.step()
            optimizer.zero_grad()
    return losses


@register_example("grad-accumulation", "001: 8 accumulated batches == one 8x larger batch (Adam)")
def grad_accumulation(out_dir: Path) -> dict:
    import torch

    # float64 for the equality check: in float32 the two sums round differently (~1e-7), and
    # Adam's first step divides the gradient by its own size, which can magnify that rounding.
    diff = accumulated_vs_big_batch(torch.float64)
    diff32 = accumulated_vs_big_batch(torch.float32)
    print(f"8 accumulated batches vs one batch of 512, after 3 Adam updates: max |param diff| "
          f"{diff:.2e} (float64), {diff32:.2e} (float32)")
    losses = train_accumulating()
    print(f"training with accumulation: loss {losses[0]:.2f} -> {losses[-1]:.4f} in {STEPS} batches")
    return {"max_abs_diff": diff, "max_abs_diff_float32": diff32,
            "first_loss": losses[0], "last_loss": losses[-1]}


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@register_example("dynamic-net", "001: middle layer reused 0-3 times; SGD momentum; weight sharing")
def dynamic_net(out_dir: Path) -> dict:
    import torch
    from torch import nn

    from ._nets import DynamicNet

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(N, D_IN, generator=g), torch.randn(N, D_OUT, generator=g)
    with seeded(0):
        model = DynamicNet(D_IN, H, D_OUT, random.Random(0))
    # Plain SGD struggles with this net whose depth keeps changing; momentum smooths the steps.
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    losses = train_with_optimizer(model, optimizer, x, y)
    params = count_params(model)
    # Counted from fresh layers of the same shapes: reusing middle_linear adds no parameters.
    middle = count_params(nn.Linear(H, H))
    three_linears = count_params(nn.Linear(D_IN, H)) + middle + count_params(nn.Linear(H, D_OUT))
    unshared_depth3 = three_linears + 2 * middle
    depths = dict(sorted(Counter(model.depths).items()))
    print(f"loss {losses[0]:.2f} -> {losses[-1]:.4f} in {STEPS} steps; depths used: {depths}")
    print(f"parameters: {params} = three Linear layers ({three_linears}), whatever the depth; "
          f"separate layers at depth 3 would need {unshared_depth3}")
    return {"first_loss": losses[0], "last_loss": losses[-1], "param_count": params,
            "three_linear_count": three_linears, "unshared_depth3_count": unshared_depth3,
            "depth_counts": depths}
