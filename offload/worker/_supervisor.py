"""Runs N worker processes, forwards signals to them and restarts any that die."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger("offload.supervisor")


class Supervisor:
    """Starts `processes` copies of `offload worker ... --processes 1` and keeps them alive.

    A child that exits while the supervisor is not stopping is restarted after a short pause
    that grows when children keep dying, so a crash loop does not spin the machine.
    """

    def __init__(self, processes: int, child_argv: Sequence[str]) -> None:
        self.processes = processes
        self.child_argv = list(child_argv)
        self.children: list[subprocess.Popen[bytes] | None] = [None] * processes
        self._stopping = False
        self._signals = 0
        self._changed = threading.Event()

    def _spawn(self, slot: int) -> None:
        cmd = [sys.executable, "-m", "offload", *self.child_argv]
        # A process group of its own: a terminal's Ctrl-C (sent to the whole foreground group)
        # reaches the supervisor only, which forwards it once; two copies would be read as the
        # second signal that stops a worker at once.
        self.children[slot] = subprocess.Popen(cmd, process_group=0)
        log.info("started worker process %d (pid %d)", slot, self.children[slot].pid)  # type: ignore[union-attr]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._stopping = True
        for child in self.children:
            if child is not None and child.poll() is None:
                try:
                    child.send_signal(signum)
                except ProcessLookupError:
                    pass
        self._changed.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_signal)  # the terminal closed: pass it on
        for slot in range(self.processes):
            self._spawn(slot)
        pause = 0.5
        while True:
            alive = 0
            for slot, child in enumerate(self.children):
                if child is None:
                    continue
                code = child.poll()
                if code is None:
                    alive += 1
                    continue
                if self._stopping:
                    self.children[slot] = None
                    continue
                log.warning(
                    "worker process %d exited with %s; restarting in %.1fs", slot, code, pause
                )
                self._changed.wait(pause)
                pause = min(pause * 2, 30.0)
                if self._stopping:  # stopped while waiting: a new child would never be told
                    self.children[slot] = None
                    continue
                self._spawn(slot)
                alive += 1
            if self._stopping and alive == 0:
                return 0
            if not self._stopping and alive == self.processes:
                pause = max(pause / 2, 0.5)
            self._changed.wait(0.2)
            self._changed.clear()
