"""Seconds per epoch of trainlab recipes on this machine's GPU, for each amp and graph setting.

    PYTHONPATH=src python3 benchmarks/gpu_bench.py [--recipes mnist-cnn cifar10-quick cifar10-fast]
                                                   [--amps none bf16 auto] [--graphs auto false] [--epochs 3]

Each (recipe, amp, graph) trains in this process on device=cuda; the first epoch (warm-up, cuDNN
autotune, graph capture) is reported apart from the median of the others. The table decides
`amp=auto`'s rule on GPUs (runtime.AUTO_AMP_MIN_BATCH_CUDA), and its last column is the speed-up
of captured steps (graph=auto) over eager ones (graph=false) measured in the same run: the
targets of issue 10 are mnist-cnn <= 0.04 s/epoch and cifar10-quick >= 100k samples/s.
Writes benchmarks/results/gpu_bench.json.
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
from trainlab.config import make_config  # noqa: E402


def measure(recipe: str, amp: str, graph: str, epochs: int) -> dict:
    samples = len(api.load_data(make_config(recipe)).train)  # the recipes validate on the test split: all of train
    with tempfile.TemporaryDirectory() as out:
        r = api.train(recipe, epochs=epochs, amp=amp, graph=graph, device="cuda", out_dir=out, tensorboard=False,
                      plots=False, quiet=True)
    seconds = [h["seconds"] for h in r.history]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return {"recipe": recipe, "amp": amp, "graph": graph, "epochs": epochs, "first_epoch_s": round(seconds[0], 4),
            "steady_epoch_s": round(steady, 4), "samples_per_s": round(samples / max(steady, 1e-9)),
            "accuracy": r.metrics.get("accuracy")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["mnist-cnn", "cifar10-quick", "cifar10-fast"])
    ap.add_argument("--amps", nargs="+", default=["none", "bf16", "auto"])
    ap.add_argument("--graphs", nargs="+", default=["auto", "false"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_bench.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_bench: no CUDA GPU here; nothing measured")
        return 0
    rows = [measure(r, a, g, args.epochs) for r in args.recipes for a in args.amps for g in args.graphs]
    eager = {(r["recipe"], r["amp"]): r["steady_epoch_s"] for r in rows if r["graph"] == "false"}
    print(f"{'recipe':<15} {'amp':<6} {'graph':<6} {'first epoch s':>14} {'steady epoch s':>15} {'samples/s':>10} "
          f"{'accuracy':>9} {'vs eager':>9}")
    for r in rows:
        acc = f"{100 * r['accuracy']:.2f}%" if r["accuracy"] is not None else "-"
        base = eager.get((r["recipe"], r["amp"]))
        r["speedup_vs_eager"] = round(base / r["steady_epoch_s"], 2) if base else None
        ratio = f"{r['speedup_vs_eager']:.2f}x" if base else "-"
        print(f"{r['recipe']:<15} {r['amp']:<6} {r['graph']:<6} {r['first_epoch_s']:>14.3f} "
              f"{r['steady_epoch_s']:>15.4f} {r['samples_per_s']:>10} {acc:>9} {ratio:>9}")
    device = torch.cuda.get_device_name(0)
    Path(args.out).write_text(json.dumps({"device": device, "torch": torch.__version__, "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
