"""Ctrl-C during training: the first asks the loop to stop after the current optimizer step and
save a checkpoint; a second aborts at once."""
from __future__ import annotations

import signal
import threading
import time

from .distributed import is_main

# Under torchrun a Ctrl-C reaches each rank twice, from the terminal and forwarded by torchrun's
# agent; a second SIGINT this soon after the first is that echo, not a request to abort.
ECHO_SECONDS = 2.0


class StopFlag:
    """`with StopFlag() as stop:` installs the SIGINT handler (main thread only) and restores the old one."""

    def __init__(self):
        self.requested, self._previous, self._first = False, None, 0.0

    def _handler(self, signum, frame):
        if self.requested:
            if time.monotonic() - self._first < ECHO_SECONDS:
                return
            raise KeyboardInterrupt
        self.requested, self._first = True, time.monotonic()
        if is_main():  # under torchrun every rank gets it; one line is enough
            print("\nstopping after this step to save a checkpoint (Ctrl-C again to abort without one)", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
