"""Signals handled on a thread of their own, never inside the interrupted code.

A Python signal handler runs in the main thread between two bytecodes, possibly while that
thread holds a lock that the handler's work needs too (an `Event`'s condition inside `wait()`,
`Popen`'s wait lock, the logging lock): a handler that sets an event or logs can then deadlock
the process on its first SIGTERM. So the handler here only writes the signal's number to a
pipe (async-signal-safe), and a daemon thread reads it and calls the real handler.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType


class SignalRelay:
    """Relays `signums` to `handle(signum)`, called on the relay's thread in arrival order."""

    def __init__(self, handle: Callable[[int], None], *signums: int) -> None:
        self._handle = handle
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._thread = threading.Thread(target=self._run, name="offload-signals", daemon=True)
        self._thread.start()
        for signum in signums:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # a full pipe: signals are already waiting
            os.write(self._write, bytes([signum]))

    def _run(self) -> None:
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                self._handle(signum)
