"""The training progress bar: a tqdm bar on an interactive terminal, nothing anywhere else.

Logs, CI and pipes get no `\\r` bar frames, only the one line per epoch the trainer prints; a
notebook keeps its widget bar. `quiet=true` turns the bar off everywhere. `close_bars` clears a
bar left mid-line (an error raised inside the loop) so that the CLI's error starts a line.
"""
from __future__ import annotations

import sys
import weakref

_open_bars: weakref.WeakSet = weakref.WeakSet()


def interactive() -> bool:
    """True where a bar can redraw itself: stderr (tqdm's stream) is a terminal, or a notebook."""
    from tqdm.auto import tqdm

    notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)  # tqdm.auto picked the widget
    stream = sys.stderr
    return notebook or bool(getattr(stream, "isatty", None) and stream.isatty())


def make_bar(total: int, initial: int, desc: str, quiet: bool = False):
    """A batch progress bar for one epoch; disabled (every method a no-op) when quiet or not interactive."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
               disable=quiet or not interactive())
    _open_bars.add(bar)
    return bar


def close_bars() -> None:
    for bar in list(_open_bars):
        bar.close()
