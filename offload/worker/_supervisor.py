"""Runs N worker processes, forwards signals to them and restarts any that die."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from offload.worker._lifeline import child_env

log = logging.getLogger("offload.supervisor")


class Supervisor:
    """Starts `processes` copies of `offload worker ... --processes 1` and keeps them alive.

    A child that exits while the supervisor is not stopping is restarted after a short pause
    that grows when children keep dying, so a crash loop does not spin the machine. Children
    stop by themselves when the supervisor dies (worker/_lifeline.py): each gets the read end
    of a pipe whose write end only the supervisor holds.
    """

    def __init__(self, processes: int, child_argv: Sequence[str]) -> None:
        self.processes = processes
        self.child_argv = list(child_argv)
        self.children: list[subprocess.Popen[bytes] | None] = [None] * processes
        self._stopping = False
        self._signals = 0
        self._changed = threading.Event()
        self._lifeline: int | None = None  # the read end of the pipe children watch
        self._lifeline_end: int | None = None  # its write end, never written to

    def _spawn(self, slot: int) -> None:
        cmd = [sys.executable, "-m", "offload", *self.child_argv]
        if self._lifeline is None:
            # Not inheritable (PEP 446): the write end stays with this process alone, so that
            # the children see end of file when it is gone, however it ends.
            self._lifeline, self._lifeline_end = os.pipe()
        # A process group of its own: a terminal's Ctrl-C (sent to the whole foreground group)
        # reaches the supervisor only, which forwards it once; two copies would be read as the
        # second signal that stops a worker at once.
        self.children[slot] = subprocess.Popen(
            cmd,
            process_group=0,
            pass_fds=(self._lifeline,),
            env={**os.environ, **child_env(self._lifeline)},
        )
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
