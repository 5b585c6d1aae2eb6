"""airbench94 (Keller Jordan's CIFAR-10 speed run, pip `airbench` 0.1.8) against `trainlab train
cifar10-fast`, on the same pixels, N runs each, timed the way airbench times itself.

    PYTHONPATH=src TRAINLAB_DATA=DIR python benchmarks/airbench_vs_trainlab.py [--runs 5] [--data-dir DIR]
    python benchmarks/airbench_vs_trainlab.py --cpu-smoke      # no GPU: one tiny run of each, plumbing only

Data: trainlab's cifar10 (the official python batches under $TRAINLAB_DATA, here JPEG-derived
pixels) is written in airbench's format, `cifar10/train.pt` and `cifar10/test.pt` (uint8 images
(N, 32, 32, 3), int64 labels, class names), in a temporary folder that becomes the working
directory: airbench94 reads `cifar10/` relative to it (also for its test set, inside train94).

What is timed (both with the data already on the GPU):
- airbench94: its own `total_time_seconds`, read from the 'eval' row it prints: CUDA events around
  the whitening of its first layer (5,000 training images), each epoch's training loop
  (augmentation included) and the final test-time-augmented evaluation (flip + 2 translations,
  tta_level 2) of the 10,000 test images; its per-epoch evaluation is not counted. The accuracy is
  that evaluation's (`tta_val_acc`).
- trainlab: the sum of metrics.csv `seconds` over the epochs (each epoch's training loop from its
  first batch until its last loss is read back from the GPU, which waits for the GPU; batch
  assembly and augmentation included; per-epoch validation, checkpoints and plots not counted)
  plus one evaluation of the finished model on the 10,000 test images, between
  torch.cuda.synchronize() calls, through trainlab's runtime (the run's precision and memory
  format and its `tta: translate`, as airbench's tta_level 2). Not counted: the
  whitening setup step (a few milliseconds on a GPU; timed apart and printed), data loading,
  startup.
Before the timed runs each side does one warm-up (airbench.warmup94(), a 20-step trainlab run):
cuDNN autotuning and CUDA context start are not counted. Importing airbench turns on
torch.backends.cudnn.benchmark for the whole process, so trainlab's runs here get it too.
samples/s = training samples (steps x batch) / the timed seconds. Results also go to
benchmarks/results/airbench_vs_trainlab.json.

On a bare GPU machine without a package index (../shared/GPU.md): on a machine with one,
`pip wheel --no-deps -w .whl airbench==0.1.8` (.whl/ is ignored by git and travels with the tree);
there: `pip install --no-index --no-deps --target /tmp/site .whl/*.whl`,
`python3 .gpu/datasets/prepare.py /tmp/data`, then
`PYTHONPATH=/tmp/site:$PWD/src TRAINLAB_DATA=/tmp/data python3 benchmarks/airbench_vs_trainlab.py`.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def airbench_files(splits, folder: Path) -> Path:
    """trainlab's train/test tensors as airbench's cifar10/{train,test}.pt under `folder`."""
    out = folder / "cifar10"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (("train", splits.train), ("test", splits.test)):
        images = data.x.permute(0, 2, 3, 1).contiguous()  # (N, 3, 32, 32) -> (N, 32, 32, 3), as torchvision's
        torch.save({"images": images, "labels": data.y.long(), "classes": list(splits.classes)}, out / f"{name}.pt")
    return out


def parse_eval_row(printed: str) -> tuple[float, float]:
    """(tta_val_acc, total_time_seconds) from the 'eval' row of airbench's printed table."""
    for line in printed.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[1] == "eval":
            return float(cells[5]), float(cells[6])
    raise RuntimeError("airbench printed no 'eval' row:\n" + printed[-2000:])


def airbench_run(i: int, n_train: int) -> dict:
    """One airbench.train94 (its defaults: 9.9 epochs at batch 1024, TTA level 2), as its table reports it."""
    import airbench

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        airbench.train94(run=i)
    print(buffer.getvalue(), end="", flush=True)
    acc, seconds = parse_eval_row(buffer.getvalue())
    steps = math.ceil(n_train // 1024 * 9.9)  # as train94 counts: 9.9 epochs of full batches of 1024
    return {"accuracy": acc, "seconds": seconds, "samples": steps * 1024}


def trainlab_run(splits, out_dir: str, smoke: bool = False, **overrides) -> dict:
    """One cifar10-fast run through the Python API (what `trainlab train cifar10-fast` runs: the
    registry's model, `fit` on the train split validated on the test split), then the timed test
    evaluation. `smoke`: 512 training and 256 test images, one epoch."""
    import trainlab
    from trainlab.api import model_for
    from trainlab.config import make_config
    from trainlab.data import TensorData
    from trainlab.runtime import build

    cfg = make_config("cifar10-fast", dict(out_dir=out_dir, tensorboard=False, plots=False, quiet=True, **overrides))
    train, test = splits.train, splits.test
    if smoke:
        train, test = TensorData(train.x[:512], train.y[:512]), TensorData(test.x[:256], test.y[:256])
    model = model_for(cfg, splits.classes, splits.input_shape)
    result = trainlab.fit(model, train, test, config=cfg, classes=splits.classes)
    rt = build(cfg, result.model, test)
    batches = rt.eval_batches(test)  # the test images moved to the device: not timed
    seconds = sum(h["seconds"] for h in result.history)
    sync(rt.device)
    start = time.perf_counter()
    evaluated = rt.evaluate(batches, len(splits.classes))
    sync(rt.device)
    steps = result.history[-1]["step"] if result.history else cfg.max_steps
    return {"accuracy": evaluated["accuracy"], "seconds": seconds + time.perf_counter() - start,
            "train_seconds": seconds, "samples": steps * cfg.batch_size}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def whitening_seconds(splits) -> float:
    """The whitening setup step alone (5,000 images, float64 on the device), synchronised."""
    from trainlab.config import make_config
    from trainlab.data.batches import Normalize
    from trainlab.models import build_model
    from trainlab.whitening import whiten

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = make_config("cifar10-fast")
    x = Normalize(cfg.mean, cfg.std, 3, device, True)(splits.train.x[:5000].to(device))
    conv = build_model("cifar10-fast").stem[0].to(device)
    sync(device)
    start = time.perf_counter()
    whiten(conv, x)
    sync(device)
    return time.perf_counter() - start


def summary(name: str, runs: list[dict]) -> dict:
    accs, secs = [r["accuracy"] for r in runs], [r["seconds"] for r in runs]
    mean_s = statistics.mean(secs)
    return {"system": name, "runs": len(runs), "acc_mean": statistics.mean(accs), "acc_min": min(accs),
            "acc_max": max(accs), "seconds_mean": mean_s, "samples_per_s": runs[0]["samples"] / mean_s,
            "each": runs}


def print_table(rows: list[dict]) -> None:
    print("| system | runs | test acc mean | min | max | time mean (s) | samples/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['runs']} | {100 * r['acc_mean']:.2f} % | {100 * r['acc_min']:.2f} % | "
              f"{100 * r['acc_max']:.2f} % | {r['seconds_mean']:.2f} | {r['samples_per_s']:,.0f} |")


def have_airbench() -> bool:
    try:
        import airbench  # noqa: F401
    except ImportError as e:
        print(f"airbench is not importable ({e}); running trainlab only. Install: pip install --no-index "
              "--no-deps --target /tmp/site .whl/*.whl and add /tmp/site to PYTHONPATH", flush=True)
        return False
    return True


def smoke_airbench(folder: Path, splits) -> None:
    """Without CUDA airbench cannot train (it moves its net to the GPU); check that it reads our files."""
    import airbench

    loader = airbench.CifarLoader(str(folder / "cifar10"), train=True, batch_size=256, gpu="cpu",
                                  aug=dict(flip=True, translate=2))
    x, y = next(iter(loader))
    assert len(loader.images) == len(splits.train) and torch.equal(loader.labels.cpu(), splits.train.y.long())
    print(f"airbench: read {len(loader.images)} training images from our files, a batch {tuple(x.shape)} "
          f"{x.dtype}; training needs CUDA, skipped", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--data-dir", default=os.environ.get("TRAINLAB_DATA", ""))
    ap.add_argument("--cpu-smoke", action="store_true", help="no GPU: one tiny run of each, to check the plumbing")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("airbench_vs_trainlab: needs a CUDA GPU (airbench94 trains only on CUDA); --cpu-smoke checks the "
              "plumbing on a CPU", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "src"))
    from trainlab.api import load_data
    from trainlab.config import make_config

    splits = load_data(make_config("cifar10-fast", dict(data_dir=args.data_dir)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, cwd = Path(tmp), os.getcwd()
        airbench_files(splits, folder)
        os.chdir(folder)
        try:
            rows = compare(args, folder, splits)
        finally:
            os.chdir(cwd)
    print_table(rows)
    print(f"trainlab's whitening setup step (not in its time above): {whitening_seconds(splits) * 1e3:.1f} ms",
          flush=True)
    if not args.cpu_smoke:
        path = ROOT / "benchmarks" / "results" / "airbench_vs_trainlab.json"
        path.write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                                    "rows": rows}, indent=2) + "\n")
    return 0


def compare(args, folder: Path, splits) -> list[dict]:
    """Each side's runs (interleaved after both warm-ups), or one tiny run of each with --cpu-smoke."""
    out = str(folder / "runs")
    airbench_ok = have_airbench()
    if args.cpu_smoke:
        if airbench_ok:
            smoke_airbench(folder, splits)
        run = trainlab_run(splits, out, smoke=True, epochs=1, batch_size=64, lr=1.5 * 64 / 1024, device="cpu")
        return [summary("trainlab cifar10-fast (smoke: 1 epoch of 512 images at batch 64)", [run])]
    trainlab_run(splits, out, max_steps=20)  # warm-up: CUDA context, cuDNN autotuning
    if airbench_ok:
        import airbench

        airbench.warmup94()
    ab, tl = [], []
    for i in range(args.runs):
        if airbench_ok:
            ab.append(airbench_run(i, len(splits.train)))
        tl.append(trainlab_run(splits, out))
        print(f"run {i + 1}/{args.runs}: trainlab {100 * tl[-1]['accuracy']:.2f} % in {tl[-1]['seconds']:.2f} s",
              flush=True)
    return ([summary("airbench94 (airbench 0.1.8, TTA)", ab)] if ab else []) + [summary("trainlab cifar10-fast", tl)]


if __name__ == "__main__":
    sys.exit(main())
