"""`python -m trainlab.examples [NAME] [--out DIR]`: run one demonstration of the notes, or list them.

User errors (an unknown name) print one line `trainlab: error: ...` and exit 2, without a traceback.
Listing the examples does not import torch: only running one does.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainlab.examples",
                                     description="Run a demonstration of the study notes; no NAME lists them.")
    parser.add_argument("name", nargs="?", metavar="NAME", help="the example to run")
    parser.add_argument("--out", metavar="DIR", type=Path,
                        help="folder for its plots and files (default: runs/examples/NAME)")
    return parser


def describe(value) -> str:
    """A short text for one result: small tensors in full, large ones by shape, lists shortened."""
    torch = sys.modules.get("torch")  # a result can hold a tensor only once an example loaded torch
    if torch is not None and isinstance(value, torch.Tensor):
        return str(value.tolist()) if value.numel() <= 25 else f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list) and len(value) > 6:
        return f"[{', '.join(describe(v) for v in value[:3])}, ... ({len(value)} items)]"
    if isinstance(value, list):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import list_examples, run_example

    if not args.name:
        print("examples (python -m trainlab.examples NAME):")
        for name, summary in list_examples():
            print(f"  {name:<20} {summary}")
        return 0
    try:
        results = run_example(args.name, args.out or Path("runs") / "examples" / args.name)
    except UserError as e:
        print(f"trainlab: error: {e}", file=sys.stderr)
        return e.exit_code
    print("results:")
    for key, value in results.items():
        print(f"  {key}: {describe(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
