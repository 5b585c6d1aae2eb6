"""Notes 003: the loss landscape of y = w*x on x = [1, 2, 3], y = [2, 4, 6] (a sweep over w, and
the 3D surface over w and b), and gradient descent against stochastic gradient descent.

Plain Python floats throughout, as in the notes, so the printed numbers match theirs digit for digit.
numpy and matplotlib are imported inside the functions, so that registering (listing) the examples
does not load them.
"""
from __future__ import annotations

from pathlib import Path

from . import register_example
from ._util import pyplot, save_figure

X_DATA = [1.0, 2.0, 3.0]
Y_DATA = [2.0, 4.0, 6.0]
EPOCHS, LR, W0 = 100, 0.01, 1.0


def mse(w: float, b: float = 0.0) -> float:
    return sum((x * w + b - y) * (x * w + b - y) for x, y in zip(X_DATA, Y_DATA)) / len(X_DATA)


def sweep_w() -> tuple[list[float], list[float]]:
    """MSE for w = 0.0, 0.1, ..., 4.0, with the notes' np.arange (hence 0.30000000000000004)."""
    import numpy as np

    ws = [float(w) for w in np.arange(0.0, 4.1, 0.1)]
    return ws, [mse(w) for w in ws]


def gradient_descent() -> tuple[float, list[float]]:
    """Full-batch GD: each epoch steps along the mean gradient of the cost over all samples."""
    w, costs = W0, []
    for _ in range(EPOCHS):
        costs.append(mse(w))
        grad = sum(2 * x * (x * w - y) for x, y in zip(X_DATA, Y_DATA)) / len(X_DATA)
        w -= LR * grad
    return w, costs


def stochastic_gradient_descent() -> tuple[float, list[float]]:
    """SGD: one step per sample. As in the notes, an epoch's loss is the last sample's loss,
    computed after that sample's update."""
    w, losses = W0, []
    for _ in range(EPOCHS):
        for x, y in zip(X_DATA, Y_DATA):
            grad = 2 * x * (x * w - y)
            w -= LR * grad
            loss = (x * w - y) ** 2
        losses.append(loss)
    return w, losses


def plot_sweep(ws: list[float], losses: list[float], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(ws, losses, marker=".")
    ax.axvline(2.0, color="r", linestyle="--", label="minimum: w = 2")
    ax.set_xlabel("w")
    ax.set_ylabel("Loss (MSE)")
    ax.set_title("MSE of y = w·x on x = [1, 2, 3], y = [2, 4, 6]")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_surface(path: Path) -> Path:
    """MSE over (w, b) for y = w*x + b, drawn with mplot3d; the minimum is at w = 2, b = 0."""
    import numpy as np

    plt = pyplot()
    w, b = np.meshgrid(np.arange(0.0, 4.05, 0.1), np.arange(-2.0, 2.05, 0.1))
    loss = sum((x * w + b - y) ** 2 for x, y in zip(X_DATA, Y_DATA)) / len(X_DATA)
    fig = plt.figure(figsize=(8, 6))
    ax = fig.add_subplot(projection="3d")
    surface = ax.plot_surface(w, b, loss, cmap="viridis", alpha=0.8)
    # A vertical red line through the minimum: a lone marker would be hidden under the surface.
    ax.plot([2.0, 2.0], [0.0, 0.0], [0.0, float(loss.max())], "r--", label="minimum (w=2, b=0)")
    ax.scatter([2.0], [0.0], [0.0], color="r", s=50, depthshade=False)
    ax.set_xlabel("w")
    ax.set_ylabel("b")
    ax.set_zlabel("MSE")
    ax.set_title("Loss surface of y = w·x + b")
    ax.legend(loc="upper left")
    fig.colorbar(surface, ax=ax, shrink=0.6, pad=0.1, label="MSE")
    return save_figure(fig, path)


def plot_descents(gd_costs: list[float], sgd_losses: list[float], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    # A log scale: the losses fall from ~5 to 1e-8 (GD) and 1e-26 (SGD), invisible on a linear axis.
    ax.semilogy(range(EPOCHS), gd_costs, label="gradient descent (mean cost)")
    ax.semilogy(range(EPOCHS), sgd_losses, label="stochastic GD (last sample's loss)")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss (log scale)")
    ax.set_title(f"GD vs SGD on y = w·x, lr {LR}, from w = {W0}")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return save_figure(fig, path)


@register_example("loss-landscape", "003: MSE vs w sweep, 3D surface over (w, b), GD vs SGD; plots")
def loss_landscape(out_dir: Path) -> dict:
    ws, losses = sweep_w()
    best = min(range(len(ws)), key=losses.__getitem__)
    print(f"sweep: MSE(w=0) = {losses[0]}, minimum MSE {losses[best]} at w = {ws[best]}")
    w_gd, gd_costs = gradient_descent()
    w_sgd, sgd_losses = stochastic_gradient_descent()
    print(f"GD : w = {w_gd} after {EPOCHS} epochs, predict(4) = {4 * w_gd}")
    print(f"SGD: w = {w_sgd} after {EPOCHS} epochs, predict(4) = {4 * w_sgd}")
    plots = {
        "loss_vs_w": plot_sweep(ws, losses, out_dir / "loss_vs_w.png"),
        "loss_surface": plot_surface(out_dir / "loss_surface.png"),
        "gd_vs_sgd": plot_descents(gd_costs, sgd_losses, out_dir / "gd_vs_sgd.png"),
    }
    print("plots: " + ", ".join(str(p) for p in plots.values()))
    return {"ws": ws, "mse": losses, "w_min": ws[best], "mse_at_0": losses[0],
            "w_gd": w_gd, "w_sgd": w_sgd, "gd_costs": gd_costs, "sgd_losses": sgd_losses,
            "plots": plots}
