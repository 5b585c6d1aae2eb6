"""2 processes x 1 thread (torchrun + DDP, gloo) against 1 process x 2 threads on this CPU.

    PYTHONPATH=src python benchmarks/ddp_vs_threads.py [--recipe mnist-cnn] [--epochs 3] [--repeats 2]

Both train the same recipe with the same global batch (64: 1 x 64 or 2 x 32); the epoch time is
the median of metrics.csv's `seconds` after the first epoch, the wall time includes startup.
Informational: on a GPU machine one process per GPU is the point, here it shows DDP's cost.
Writes benchmarks/results/ddp_vs_threads.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(recipe: str, epochs: int, words: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "trainlab", "train", recipe, f"epochs={epochs}", f"out_dir={out}", "name=b",
               "tensorboard=false", "plots=false", *words]
        started = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        wall = time.perf_counter() - started
        if r.returncode:
            raise SystemExit(r.stderr[-3000:])
        with open(Path(out) / "b" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
    seconds = [float(row["seconds"]) for row in rows]
    return {"epoch_s": statistics.median(seconds[1:] or seconds), "wall_s": wall,
            "val_acc": float(rows[-1]["val_acc"]) if rows[-1]["val_acc"] else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="mnist-cnn")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    setups = {"1 process x 2 threads": ["batch_size=64", "threads=2"],
              "2 processes x 1 thread": ["batch_size=32", "nproc=2", "threads=1"]}
    results = {name: [] for name in setups}
    for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits both
        for name, words in setups.items():
            results[name].append(run(args.recipe, args.epochs, words))
    summary = {name: {k: statistics.median(r[k] for r in rs) for k in ("epoch_s", "wall_s")} | {"val_acc": rs[-1]["val_acc"]}
               for name, rs in results.items()}
    for name, s in summary.items():
        print(f"{name:<24} epoch {s['epoch_s']:.3f} s   wall {s['wall_s']:.1f} s   val_acc {s['val_acc']}")
    out = ROOT / "benchmarks" / "results" / "ddp_vs_threads.json"
    out.write_text(json.dumps({"recipe": args.recipe, "epochs": args.epochs, "runs": results, "summary": summary},
                              indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
