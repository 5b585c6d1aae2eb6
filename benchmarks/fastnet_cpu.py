"""Training samples/s of cifar10-fast's net on this CPU: airbench94's design (now) against the
previous FastCifarNet (3x3 stem of 32 channels, 32 -> 16 -> 8 -> 4 pixels), at the same batch.

    PYTHONPATH=src TRAINLAB_DATA=... python benchmarks/fastnet_cpu.py [--batch 256] [--samples 5120] [--repeats 3]
                                                                     [--threads N]

Each repeat trains one epoch of each net on the first `samples` CIFAR-10 training images through
`trainlab.fit` with the cifar10-fast recipe's settings (amp auto, channels_last, flip + reflect
translate; the old net without whiten/bias_lr_scale, as it was trained), A and B interleaved,
and reads the epoch's training seconds from the history (the loop only: no evaluation, no setup).
Also times the whitening step alone. Prints a table; writes benchmarks/results/fastnet_cpu.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import trainlab
from trainlab.api import load_data
from trainlab.config import make_config
from trainlab.data import TensorData
from trainlab.models import build_model
from trainlab.nets import Scale

ROOT = Path(__file__).resolve().parent.parent


def old_group(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(cout),
                         nn.GELU(), nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())


def old_fast_cifar_net(num_classes: int = 10) -> nn.Module:
    """The previous FastCifarNet (before airbench94's stem and BatchNorm settings), for comparison only."""
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.GELU(),
                         old_group(32, 64), old_group(64, 256), old_group(256, 256),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(256, num_classes, bias=False), Scale(1 / 9))


def one_epoch(model: nn.Module, data: TensorData, out: str, batch: int, new: bool, threads: int) -> float:
    overrides = dict(epochs=1, batch_size=batch, lr=1.5 * batch / 1024, out_dir=out, tensorboard=False, plots=False,
                     quiet=True, log_every=1000, threads=threads)
    if not new:
        overrides.update(whiten=False, bias_lr_scale=1.0)
    cfg = make_config("cifar10-fast", overrides)
    r = trainlab.fit(model, data, None, config=cfg)
    return r.history[0]["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--samples", type=int, default=5120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="0: trainlab's auto choice (free cores)")
    args = ap.parse_args()
    splits = load_data(make_config("cifar10-fast"))
    data = TensorData(splits.train.x[:args.samples], splits.train.y[:args.samples])
    steps = args.samples // args.batch  # drop_last
    times = {"airbench94 design (new)": [], "previous FastCifarNet": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):
            times["airbench94 design (new)"].append(one_epoch(build_model("cifar10-fast"), data, out, args.batch, True,
                                                                       args.threads))
            times["previous FastCifarNet"].append(one_epoch(old_fast_cifar_net(), data, out, args.batch, False,
                                                                     args.threads))
    whiten_s = time_whitening(splits.train)
    rows = {k: {"median_s": statistics.median(v), "samples_per_s": steps * args.batch / statistics.median(v),
                "min_s": min(v), "runs_s": v} for k, v in times.items()}
    print(f"batch {args.batch}, {steps} steps per epoch, threads {torch.get_num_threads()}, "
          f"amp {make_config('cifar10-fast').amp}")
    for name, row in rows.items():
        print(f"{name:<26} {row['median_s']:7.2f} s/epoch  {row['samples_per_s']:7.0f} samples/s  "
              f"(fastest {row['min_s']:.2f} s)")
    print(f"whitening 5000 images (float64, this CPU): {whiten_s:.2f} s")
    result = {"batch": args.batch, "samples": args.samples, "steps": steps, "threads": torch.get_num_threads(),
              "nets": rows, "whitening_s": whiten_s}
    path = ROOT / "benchmarks" / "results" / "fastnet_cpu.json"
    path.write_text(json.dumps(result, indent=2) + "\n")


def time_whitening(train: TensorData) -> float:
    from trainlab.data.batches import Normalize
    from trainlab.whitening import whiten

    cfg = make_config("cifar10-fast")
    x = Normalize(cfg.mean, cfg.std, 3, torch.device("cpu"), True)(train.x[:5000])
    start = time.perf_counter()
    whiten(build_model("cifar10-fast").stem[0], x)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
