"""Where a training step's time goes: data / forward / backward / optimizer / sync, per recipe.

    python benchmarks/profile_step.py [--recipes mnist-mlp mnist-cnn cifar10-quick] [--steps 60]

Runs trainlab's batch path and the same step as the engine (autocast per the recipe's amp, loss,
backward, optimizer step) under torch.profiler, each phase inside a record_function label, and
prints each phase's share of the wall time. Writes benchmarks/results/profile_step.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from trainlab.api import load_data, model_for
from trainlab.config import make_config
from trainlab.optim import build_optimizer
from trainlab.runtime import build

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("data", "forward", "backward", "optimizer", "sync")


def profile_recipe(recipe: str, steps: int) -> dict:
    cfg = make_config(recipe)
    splits = load_data(cfg)
    rt = build(cfg, model_for(cfg, splits.classes, splits.input_shape), splits.train)
    model, criterion, ctx, amp = rt.model, rt.criterion, rt.autocast, rt.amp
    batches, _ = rt.batches(splits.train)
    opt = build_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum)
    it = iter(batches.epoch())
    for _ in range(5):  # warm-up outside the profile
        x, y = next(it)
        criterion(model(x), y).backward()
    losses = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            with record_function("data"):
                x, y = next(it)
            with record_function("forward"), ctx:
                out = model(x)
            with record_function("backward"):
                loss = criterion(out.float(), y)
                loss.backward()
            with record_function("optimizer"):
                opt.step()
                opt.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            if len(losses) == 50:
                with record_function("sync"):
                    torch.stack(losses).tolist()
                losses.clear()
    totals = {e.key: e.cpu_time_total for e in prof.key_averages() if e.key in PHASES}
    whole = sum(totals.values()) or 1.0
    return {"recipe": recipe, "amp": str(amp), "steps": steps, "ms_per_step": whole / steps / 1000,
            "share": {k: round(100 * totals.get(k, 0.0) / whole, 1) for k in PHASES}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["mnist-mlp", "mnist-cnn", "cifar10-quick"])
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    rows = [profile_recipe(r, args.steps) for r in args.recipes]
    print(f"{'recipe':<15} {'amp':<15} {'ms/step':>8}  " + "  ".join(f"{p:>9}" for p in PHASES))
    for r in rows:
        print(f"{r['recipe']:<15} {r['amp']:<15} {r['ms_per_step']:>8.2f}  "
              + "  ".join(f"{r['share'][p]:>8.1f}%" for p in PHASES))
    out = ROOT / "benchmarks" / "results" / "profile_step.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
