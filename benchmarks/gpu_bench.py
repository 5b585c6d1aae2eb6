"""Seconds per epoch of trainlab recipes on this machine's GPU, for each amp setting.

    PYTHONPATH=src python3 benchmarks/gpu_bench.py [--recipes mnist-cnn cifar10-quick cifar10-fast]
                                                   [--amps none bf16 auto] [--epochs 3]

Each (recipe, amp) trains in this process on device=cuda; the first epoch (warm-up, cuDNN
autotune) is reported apart from the median of the others. The table decides `amp=auto`'s
rule on GPUs (runtime.AUTO_AMP_MIN_BATCH_CUDA). Writes benchmarks/results/gpu_bench.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from trainlab import api  # noqa: E402


def measure(recipe: str, amp: str, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        r = api.train(recipe, epochs=epochs, amp=amp, device="cuda", out_dir=out, tensorboard=False, plots=False)
    seconds = [h["seconds"] for h in r.history]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return {"recipe": recipe, "amp": amp, "epochs": epochs, "first_epoch_s": round(seconds[0], 4),
            "steady_epoch_s": round(steady, 4), "accuracy": r.metrics.get("accuracy")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["mnist-cnn", "cifar10-quick", "cifar10-fast"])
    ap.add_argument("--amps", nargs="+", default=["none", "bf16", "auto"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_bench.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_bench: no CUDA GPU here; nothing measured")
        return 0
    rows = [measure(r, a, args.epochs) for r in args.recipes for a in args.amps]
    print(f"{'recipe':<15} {'amp':<6} {'first epoch s':>14} {'steady epoch s':>15} {'accuracy':>9}")
    for r in rows:
        acc = f"{100 * r['accuracy']:.2f}%" if r["accuracy"] is not None else "-"
        print(f"{r['recipe']:<15} {r['amp']:<6} {r['first_epoch_s']:>14.3f} {r['steady_epoch_s']:>15.4f} {acc:>9}")
    device = torch.cuda.get_device_name(0)
    Path(args.out).write_text(json.dumps({"device": device, "torch": torch.__version__, "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
