"""The notes' own training loop against trainlab: same model, batch size, epochs and data.

    python benchmarks/notes_vs_trainlab.py [--tasks mnist-mlp mnist-cnn cifar10-quick] [--epochs 10]
                                           [--repeats 2] [--trainlab-args amp=bf16 ...]

Runs ../shared/bench/notes_loop.py and `trainlab train TASK` one after the other (interleaved,
`--repeats` times each), takes the median epoch time of each side and prints samples/s, the
ratio, test accuracy and each process's peak resident memory. Epoch counts: `--epochs` for the
MNIST tasks, `--cifar-epochs` (default 2) for cifar10-quick. Writes
benchmarks/results/notes_vs_trainlab.json (or --out).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES_LOOP = ROOT.parent / "shared" / "bench" / "notes_loop.py"
TRAIN_SAMPLES = {"mnist-mlp": 5000, "mnist-cnn": 5000, "cifar10-quick": 50000}
TARGETS = {"mnist-mlp": 4.0, "mnist-cnn": 2.0, "cifar10-quick": 1.5}


def run_measured(cmd: list[str]) -> tuple[str, float]:
    """(stdout, peak resident memory in MiB) of one child process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # wait4 gives this child's own rusage
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read()[-2000:]}")
        return out.read(), usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def notes_run(task: str, epochs: int, data_dir: str) -> dict:
    out, rss = run_measured([sys.executable, str(NOTES_LOOP), data_dir, task, str(epochs)])
    r = json.loads(out.strip().splitlines()[-1])
    return {"epoch_s": r["epoch_s"], "acc": r["test_acc"], "rss_mib": rss}


def trainlab_run(task: str, epochs: int, data_dir: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        _, rss = run_measured([sys.executable, "-m", "trainlab", "train", task, f"epochs={epochs}", f"out_dir={tmp}",
                               f"data_dir={data_dir}", *extra])
        rows = list(csv.DictReader(open(Path(tmp) / task / "metrics.csv")))
    return {"epoch_s": statistics.median(float(r["seconds"]) for r in rows), "acc": float(rows[-1]["val_acc"]),
            "rss_mib": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["mnist-mlp", "mnist-cnn"], choices=list(TRAIN_SAMPLES))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--cifar-epochs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "notes_vs_trainlab.json"))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("TRAINLAB_DATA", str(Path.home() / ".cache/trainlab-data")))
    ap.add_argument("--trainlab-args", nargs="*", default=[], help="extra key=value for trainlab")
    args = ap.parse_args()
    results = []
    for task in args.tasks:
        notes, ours = [], []
        epochs = args.cifar_epochs if task.startswith("cifar") else args.epochs
        for _ in range(args.repeats):  # interleaved, so both sides see the same machine load
            notes.append(notes_run(task, epochs, args.data_dir))
            ours.append(trainlab_run(task, epochs, args.data_dir, args.trainlab_args))
        n_s = statistics.median(r["epoch_s"] for r in notes)
        t_s = statistics.median(r["epoch_s"] for r in ours)
        results.append({"task": task, "epochs": epochs, "notes_epoch_s": n_s, "trainlab_epoch_s": t_s,
                        "notes_rss_mib": max(r["rss_mib"] for r in notes), "trainlab_rss_mib": max(r["rss_mib"] for r in ours),
                        "notes_samples_s": TRAIN_SAMPLES[task] / n_s, "trainlab_samples_s": TRAIN_SAMPLES[task] / t_s,
                        "ratio": n_s / t_s, "target": TARGETS[task],
                        "notes_acc": [r["acc"] for r in notes], "trainlab_acc": [r["acc"] for r in ours]})
    header = (f"{'task':<14} {'notes s/ep':>10} {'trainlab s/ep':>13} {'notes smp/s':>11} {'trainlab smp/s':>14} "
              f"{'ratio':>6} {'target':>6} {'peak MiB notes/trainlab':>24}  accuracy notes / trainlab")
    print(header)
    for r in results:
        acc = f"{'/'.join(f'{a:.3f}' for a in r['notes_acc'])} / {'/'.join(f'{a:.3f}' for a in r['trainlab_acc'])}"
        mem = f"{r['notes_rss_mib']:.0f} / {r['trainlab_rss_mib']:.0f}"
        print(f"{r['task']:<14} {r['notes_epoch_s']:>10.3f} {r['trainlab_epoch_s']:>13.3f} {r['notes_samples_s']:>11.0f} "
              f"{r['trainlab_samples_s']:>14.0f} {r['ratio']:>5.2f}x {r['target']:>5.1f}x {mem:>24}  {acc}")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()}
    out = Path(args.out)
    out.write_text(json.dumps({"machine": machine, "trainlab_args": args.trainlab_args, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
