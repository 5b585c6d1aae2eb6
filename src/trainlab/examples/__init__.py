"""The demonstrations of the study notes, as runnable examples.

Each example is a plain function `(out_dir: Path) -> dict` registered with
`@register_example(name, summary)`: it prints what the notes print (concisely) and returns its key
results (tensors, floats, paths) so that tests can check them against the notes' printed values.

    from trainlab.examples import list_examples, run_example
    results = run_example("conv-demo", Path("runs/examples/conv-demo"))

or from the shell: `python -m trainlab.examples conv-demo`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError

ExampleFn = Callable[[Path], dict]


@dataclass(frozen=True)
class Example:
    name: str
    summary: str
    run: ExampleFn


EXAMPLES: dict[str, Example] = {}


def register_example(name: str, summary: str):
    """Register `fn(out_dir) -> dict` under `name`; names are unique across the modules."""
    def wrap(fn: ExampleFn) -> ExampleFn:
        if name in EXAMPLES:
            raise ValueError(f"example '{name}' registered twice")
        EXAMPLES[name] = Example(name, summary, fn)
        return fn

    return wrap


def list_examples() -> list[tuple[str, str]]:
    """(name, summary) of every example, in the order of the notes."""
    return [(e.name, e.summary) for e in EXAMPLES.values()]


def run_example(name: str, out_dir: Path) -> dict:
    """Run example `name`, writing its files (plots, logs, checkpoints) under `out_dir`."""
    if name not in EXAMPLES:
        raise UserError(f"unknown example '{name}'; available: {', '.join(EXAMPLES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return EXAMPLES[name].run(out_dir)


# Imported last because the modules register themselves through `register_example` above; the
# import order is the listing order, which follows the notes.
from . import layers, losses, autograd, regression, landscape, io_demos  # noqa: E402,F401
