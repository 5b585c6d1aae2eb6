"""A model summary: each layer's output shape and parameter count for one input, and the totals."""
from __future__ import annotations

import torch
from torch import nn


def summarize(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> list[dict]:
    """Rows (name, type, output shape, params) for every leaf module, in call order."""
    rows, hooks = [], []

    def hook(name):
        def record(module, inputs, output):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else "-"
            rows.append({"name": name, "type": type(module).__name__, "output": shape,
                         "params": sum(p.numel() for p in module.parameters(recurse=False))})
        return record

    for name, module in model.named_modules():
        if not list(module.children()) or (name and any(True for _ in module.parameters(recurse=False))):
            hooks.append(module.register_forward_hook(hook(name or type(model).__name__)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((batch, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def format_summary(model: nn.Module, input_shape: tuple[int, ...], title: str) -> str:
    rows = summarize(model, input_shape)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    width = max([len(r["name"]) + len(r["type"]) + 3 for r in rows] + [20])
    lines = [f"{title}: input (1, {', '.join(map(str, input_shape))})",
             f"{'layer':<{width}}  {'output shape':<22}  {'params':>12}", "-" * (width + 38)]
    for r in rows:
        label = f"{r['name']} ({r['type']})"
        lines.append(f"{label:<{width}}  {str(r['output']):<22}  {r['params']:>12,}")
    lines += ["-" * (width + 38), f"total params: {total:,}   trainable: {trainable:,}   "
              f"size: {total * 4 / 2**20:.2f} MiB (float32)"]
    return "\n".join(lines)
