"""Ctrl-C during training: the first asks the loop to stop after the current optimizer step and
save a checkpoint; a second aborts at once."""
from __future__ import annotations

import signal
import threading


class StopFlag:
    """`with StopFlag() as stop:` installs the SIGINT handler (main thread only) and restores the old one."""

    def __init__(self):
        self.requested, self._previous = False, None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step to save a checkpoint (Ctrl-C again to abort without one)", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
