"""The image-folder path: the first run decodes every image once, later runs load the cached tensors.

    python benchmarks/folder_epochs.py [--recipe ants-bees] [--epochs 3] [--set key=value ...]

Runs the recipe twice against an empty cache folder and reports, for each run, the time to get the
data ready (decoding JPEGs, or loading the cache entry) and the training time of each epoch.
Writes benchmarks/results/folder_epochs.json.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(recipe: str, epochs: int, out: str, overrides: dict) -> dict:
    from trainlab import api
    from trainlab.config import make_config

    cfg = make_config(recipe, {"epochs": str(epochs), "out_dir": out, "tensorboard": "false", "plots": "false",
                               **overrides})
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        splits = api.load_data(cfg)
    ready = time.perf_counter() - start
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = api.train_config(cfg)
    return {"data_ready_s": ready, "images": len(splits.train) + len(splits.test),
            "epoch_s": [round(h["seconds"], 3) for h in result.history]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="ants-bees")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--label", default="", help="name for the results file (default: the recipe)")
    args = ap.parse_args()
    from trainlab.config import parse_overrides

    overrides = parse_overrides(args.set)
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        os.environ["TRAINLAB_CACHE"] = cache  # empty: the first run must decode
        first = one_run(args.recipe, args.epochs, out, overrides)
        second = one_run(args.recipe, args.epochs, out, overrides)
    for name, r in (("first run (decode)", first), ("second run (cached)", second)):
        print(f"{args.label or args.recipe} {name:<20} data ready {r['data_ready_s']:7.2f} s for {r['images']} images; "
              f"epochs {', '.join(f'{e:.2f}' for e in r['epoch_s'])} s")
    path = ROOT / "benchmarks" / "results" / f"folder_epochs_{args.label or args.recipe}.json"
    path.write_text(json.dumps({"recipe": args.recipe, "overrides": args.set, "first": first, "second": second},
                               indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
