"""trainlab's own overhead: `trainlab.fit` against a bare hand-written loop on the same tensors.

    python benchmarks/overhead.py [--model mnist-mlp] [--epochs 6] [--repeats 3]

Both sides train the same model (same init) with the same optimizer on the bundled MNIST sample,
already decoded and resident on the device, with the same batches: an index_select per batch, the
fused uint8 -> float normalisation, forward, loss, backward, step, zero_grad. The bare loop has
nothing else: no progress bar, no host syncs, no logging. Runs alternate (bare, trainlab, ...) and
each side's median epoch time is compared. Writes benchmarks/results/overhead.json.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import trainlab
from trainlab.data import build_dataset
from trainlab.data.batches import Normalize
from trainlab.models import build_model

ROOT = Path(__file__).resolve().parent.parent


def bare_epochs(model_name: str, data, epochs: int, threads: int) -> list[float]:
    """The minimal loop, timed per epoch like trainlab's metrics.csv `seconds` (training only)."""
    torch.set_num_threads(threads)  # the same as trainlab's run: threads=auto would otherwise differ
    torch.manual_seed(0)
    model = build_model(model_name)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5, fused=True)  # the optimizer trainlab builds
    loss_fn = torch.nn.CrossEntropyLoss()
    norm = Normalize([0.1307], [0.3081], 1, torch.device("cpu"))
    x, y = data.x, data.y
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 64):
            idx = order[i:i + 64]
            loss = loss_fn(model(norm(x.index_select(0, idx))), y.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def trainlab_epochs(model_name: str, data, test, epochs: int, **options) -> list[float]:
    torch.manual_seed(0)
    model = build_model(model_name)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        r = trainlab.fit(model, data, test, epochs=epochs, lr=0.01, momentum=0.5, batch_size=64, mean=[0.1307],
                         std=[0.3081], out_dir=tmp, plots=False, **options)
    return [row["seconds"] for row in r.history]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist-mlp")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    splits = build_dataset("mnist-sample")
    test = trainlab.TensorData(splits.test.x[:1000], splits.test.y[:1000])
    threads = torch.get_num_threads()  # pinned for both sides (trainlab's default would pick by load)
    sides = {"bare loop": [], "trainlab (tensorboard on)": [], "trainlab (tensorboard off)": []}
    for _ in range(args.repeats):  # interleaved so that machine noise hits every side alike
        sides["bare loop"] += bare_epochs(args.model, splits.train, args.epochs, threads)[1:]  # 1st: warm-up
        sides["trainlab (tensorboard on)"] += trainlab_epochs(args.model, splits.train, test, args.epochs,
                                                              threads=threads)[1:]
        sides["trainlab (tensorboard off)"] += trainlab_epochs(args.model, splits.train, test, args.epochs,
                                                               tensorboard=False, threads=threads)[1:]
    bare = statistics.median(sides["bare loop"])
    rows = [{"side": k, "median_epoch_s": statistics.median(v), "overhead_pct": 100 * (statistics.median(v) / bare - 1)}
            for k, v in sides.items()]
    print(f"{args.model}, {args.epochs - 1} timed epochs x {args.repeats} repeats, median epoch time:")
    for r in rows:
        print(f"  {r['side']:<28} {r['median_epoch_s']:.4f} s   overhead {r['overhead_pct']:+.1f} %  (target <= 3 %)")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch": torch.__version__, "threads": torch.get_num_threads()}
    out = ROOT / "benchmarks" / "results" / "overhead.json"
    out.write_text(json.dumps({"machine": machine, "model": args.model, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
