"""threads=auto on a busy machine: one mnist-cnn epoch with threads=1, threads=<cores> and auto,
while K busy-loop processes (bounded in time, stopped by this script) load the cores.

    PYTHONPATH=src python benchmarks/busy_threads.py [--busy 3] [--epochs 1]

Each setting runs as its own `trainlab train` process; the epoch time comes from its metrics.csv.
Writes benchmarks/results/busy_threads.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def busy(until: float) -> None:
    while time.time() < until:  # bounded: ends by itself even if this script is killed
        pass


def epoch_seconds(threads: int, epochs: int) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "trainlab", "train", "mnist-cnn", f"epochs={epochs}", f"threads={threads}",
               f"out_dir={out}", "tensorboard=false", "plots=false"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        if r.returncode:
            raise SystemExit(r.stderr[-2000:])
        with open(Path(out) / "mnist-cnn" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        chosen = next((line for line in r.stdout.splitlines() if line.startswith("threads:")), "")
        return sum(float(row["seconds"]) for row in rows) / len(rows), chosen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy", type=int, default=3, help="busy-loop processes (the load)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=float, default=600, help="seconds the load may last at most")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    loaders = [mp.Process(target=busy, args=(time.time() + args.limit,), daemon=True) for _ in range(args.busy)]
    for p in loaders:
        p.start()
    time.sleep(20)  # let the 1-minute load average see the load
    rows = []
    try:
        for threads in (1, cores, 0):
            seconds, chosen = epoch_seconds(threads, args.epochs)
            rows.append({"threads": threads or "auto", "epoch_s": round(seconds, 3), "chosen": chosen,
                         "load": round(os.getloadavg()[0], 2)})
            print(rows[-1], flush=True)
    finally:
        for p in loaders:
            p.terminate()
    out = ROOT / "benchmarks" / "results" / "busy_threads.json"
    out.write_text(json.dumps({"cores": cores, "busy_processes": args.busy, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
