"""Runs N worker processes, forwards signals to them and restarts any that die.

A child that exits with a permanent failure (exit 2: a usage or configuration error; exit 3:
the store is damaged) is not restarted, since it would fail the same way: the supervisor stops
the others and exits with that code. Any other death is restarted after a pause that doubles
each time a child dies within `STABLE_AFTER` seconds of its start, up to 30 s, and is back to
half a second only for a child that had run that long: a crash loop slows down and stays slow.
In a burst (`offload worker --burst`) a child that exits 0 has drained the queues: its slot
is done, and the supervisor exits 0 once every slot is.

On Linux the first children are forked (`fork`) from the supervisor once it has imported offload
and before it imports the app or starts a thread, so they do not import it all again: the
worker's start-up was two interpreter starts and two imports of offload in a row. Each forked
child waits for the supervisor's check of the app and the store (`release`) before it imports
the app itself, so the app's own import-time state (connections, threads) is never shared; a
failed check (`abandon`) ends them without a word. Restarts start a fresh interpreter.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from offload.worker._forked import Forked, can_fork, fork_child
from offload.worker._lifeline import child_env
from offload.worker._signals import SignalRelay

log = logging.getLogger("offload.supervisor")

EXIT_USAGE = 2  # a bad option, app or configuration: the same command fails the same way
EXIT_DAMAGED = 3  # the store is damaged (StoreCorruptError): restore it, then start again
PERMANENT = {
    EXIT_USAGE: "its command line or configuration is wrong",
    EXIT_DAMAGED: "the store is damaged",
}
FIRST_PAUSE = 0.5  # seconds before restarting a child that died
MAX_PAUSE = 30.0
STABLE_AFTER = 10.0  # seconds a child must have run for its death to reset the pause


class Child(Protocol):
    """What the supervisor needs of a child process: a `Popen` or a `Forked`."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...


class Supervisor:
    """Starts `processes` copies of `offload worker ... --processes 1` and keeps them alive.

    A child that exits while the supervisor is not stopping is restarted after a short pause
    that grows while it keeps dying soon after its start, so a crash loop does not spin the
    machine; one that exits with a permanent failure (`PERMANENT`) stops them all. `env` adds
    to the environment the children inherit: a store URL with its password goes there, never
    into `child_argv`, which every local user can read. Children
    stop by themselves when the supervisor dies (worker/_lifeline.py): each gets the read end
    of a pipe whose write end only the supervisor holds.
    """

    def __init__(
        self,
        processes: int,
        child_argv: Sequence[str],
        burst: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.processes = processes
        self.burst = burst
        self.done = [False] * processes  # burst: slots whose child drained the queues
        self.child_argv = list(child_argv)
        self.env = dict(env or {})  # for the children only: secrets never go on a command line
        self.children: list[Child | None] = [None] * processes
        self.started_at = [0.0] * processes  # monotonic: each slot's latest start
        self.pauses = [FIRST_PAUSE] * processes  # each slot's next restart pause
        self.restart_at: dict[int, float] = {}  # slot -> monotonic time of its restart
        self.exit_code = 0
        self._stopping = False
        self._signals = 0
        self._changed = threading.Event()
        self._lifeline: int | None = None  # the read end of the pipe children watch
        self._lifeline_end: int | None = None  # its write end, never written to
        self._gates: list[int] = []  # forked children's gates (write ends) until released

    def _open_lifeline(self) -> int:
        if self._lifeline is None:
            # Not inheritable (PEP 446): the write end stays with this process alone, so that
            # the children see end of file when it is gone, however it ends.
            self._lifeline, self._lifeline_end = os.pipe()
        return self._lifeline

    def fork(self, child_main: Callable[[], int]) -> bool:
        """Start every slot now by forking this process; each child waits for `release()`,
        then runs `child_main()` and exits with what it returns. False, with nothing started,
        where forking is not safe (not Linux, or a thread runs: a fork copies only this one)."""
        if not can_fork():
            return False
        lifeline = self._open_lifeline()
        env = child_env(lifeline)
        for slot in range(self.processes):
            read, write = os.pipe()
            self._gates.append(write)
            # The child closes every end it must not hold: the lifeline's write end, and the
            # gates (its own and its siblings'), whose end of file tells it the check failed.
            keep_closed = [self._lifeline_end, *self._gates]
            forked = fork_child(child_main, read, [fd for fd in keep_closed if fd is not None], env)
            os.close(read)
            self.children[slot] = forked
            self.started_at[slot] = time.monotonic()
            log.debug("forked worker process %d (pid %d): held until the check", slot, forked.pid)
        return True

    def release(self) -> None:
        """The check passed: forked children go on to load the app and run."""
        for slot, gate in enumerate(self._gates):
            try:
                os.write(gate, b"\x01")
            except OSError:  # that child is gone already: `run` sees it exit
                pass
            os.close(gate)
            child = self.children[slot]
            if child is not None:
                log.info("started worker process %d (pid %d, forked)", slot, child.pid)
        self._gates.clear()

    def abandon(self) -> None:
        """The check failed: forked children end without running anything, and are reaped."""
        for gate in self._gates:
            os.close(gate)
        self._gates.clear()
        for slot, child in enumerate(self.children):
            if child is not None:
                Forked.reap(child)
                self.children[slot] = None

    def _spawn(self, slot: int) -> None:
        cmd = [sys.executable, "-m", "offload", *self.child_argv]
        self._open_lifeline()
        assert self._lifeline is not None
        # A process group of its own: a terminal's Ctrl-C (sent to the whole foreground group)
        # reaches the supervisor only, which forwards it once; two copies would be read as the
        # second signal that stops a worker at once.
        self.children[slot] = subprocess.Popen(
            cmd,
            process_group=0,
            pass_fds=(self._lifeline,),
            env={**os.environ, **self.env, **child_env(self._lifeline)},
        )
        self.started_at[slot] = time.monotonic()
        log.info("started worker process %d (pid %d)", slot, self.children[slot].pid)  # type: ignore[union-attr]

    def _on_signal(self, signum: int) -> None:
        """A signal to pass on to the children, on the signal relay's thread
        (worker/_signals.py). A closed terminal (SIGHUP) stops them as SIGTERM does."""
        self._signals += 1
        self._stopping = True
        passed = signal.SIGTERM if signum == signal.SIGHUP else signum
        for child in self.children:
            if child is not None and child.poll() is None:
                try:
                    child.send_signal(passed)
                except ProcessLookupError:
                    pass
        self._changed.set()

    def run(self) -> int:
        SignalRelay(self._on_signal, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        self.release()  # forked children (if any) were held only until the check
        for slot in range(self.processes):
            if self.children[slot] is None:  # not forked already
                self._spawn(slot)
        while True:
            for slot, child in enumerate(self.children):
                if child is not None and (code := child.poll()) is not None:
                    self.children[slot] = None
                    if not self._stopping:
                        self._exited(slot, code)
            if self._stopping or all(self.done):
                self.restart_at.clear()
                if all(child is None for child in self.children):
                    return self.exit_code
            now = time.monotonic()
            for slot, at in list(self.restart_at.items()):
                if at <= now and not self._stopping:  # a child started now would not be told
                    del self.restart_at[slot]
                    self._spawn(slot)
            wait = min([0.2, *(at - now for at in self.restart_at.values())])
            self._changed.wait(max(wait, 0.0))
            self._changed.clear()

    def _exited(self, slot: int, code: int) -> None:
        """A child died while the supervisor runs: restart it later, or stop everything if
        a restart cannot help."""
        if self.burst and code == 0:
            log.info("worker process %d drained the queues", slot)
            self.done[slot] = True
            return
        if code in PERMANENT:
            log.error(
                "worker process %d exited with %d (%s): a restart cannot fix that; stopping",
                slot,
                code,
                PERMANENT[code],
            )
            self.exit_code = code
            self._on_signal(signal.SIGTERM)
            return
        lived = time.monotonic() - self.started_at[slot]
        if lived >= STABLE_AFTER:
            self.pauses[slot] = FIRST_PAUSE
        pause = self.pauses[slot]
        self.pauses[slot] = min(pause * 2, MAX_PAUSE)
        log.warning(
            "worker process %d exited with %s after %.1fs; restarting in %.1fs",
            slot,
            code,
            lived,
            pause,
        )
        self.restart_at[slot] = time.monotonic() + pause
