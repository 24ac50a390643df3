"""A worker process forked from its supervisor, held at a gate until the supervisor's check.

A forked child starts with what the supervisor has imported, instead of a fresh interpreter
that imports it all again. It is forked before the supervisor imports the user's app or starts
a thread (`can_fork`), so it copies nothing but offload's own modules; it waits at its gate
(a pipe) until the supervisor has checked the app and the store, and ends without a word when
the gate closes unopened (the check failed, or the supervisor died). Then it runs the worker
and exits with its code; it never returns into the supervisor's code.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence


def can_fork() -> bool:
    """Forking is safe here: Linux (elsewhere system libraries may not survive a fork), and
    this thread is the only one (a fork copies only the calling thread, with any lock another
    thread held left locked for ever)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


class Forked:
    """A forked child, with the part of `subprocess.Popen` the supervisor uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code (negative: the signal that ended it), or None while it runs."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its code is unknown
                self.returncode = 1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    @staticmethod
    def reap(child: object) -> None:
        """Wait for a forked child whose gate closed unopened (it exits at once)."""
        if isinstance(child, Forked) and child.returncode is None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
            child.returncode = 0


def fork_child(
    child_main: Callable[[], int], gate: int, close: Sequence[int], env: Mapping[str, str]
) -> Forked:
    """Fork a child that closes the descriptors `close`, takes `env` into its environment, puts
    itself in a process group of its own (as `Popen(process_group=0)` would), waits for a byte
    on `gate`, then runs `child_main()` and exits with its result."""
    for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
        with contextlib.suppress(Exception):
            stream.flush()
    pid = os.fork()
    if pid:
        return Forked(pid)
    code = 1
    try:
        for fd in close:
            os.close(fd)
        os.environ.update(env)
        os.setpgid(0, 0)
        opened = _wait(gate)
        os.close(gate)
        if opened:
            code = _run(child_main)
            # What a process's normal exit runs: the app's exit handlers (a telemetry
            # exporter's last flush) as well as those registered before the fork.
            atexit._run_exitfuncs()
        else:
            code = 0
    except BaseException:  # never back into the supervisor's stack
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _wait(gate: int) -> bool:
    """Block until the supervisor opens the gate (True) or it closes unopened (False)."""
    while True:
        try:
            return bool(os.read(gate, 1))
        except InterruptedError:
            continue


def _run(child_main: Callable[[], int]) -> int:
    """`child_main()`'s exit code, with `sys.exit` and an interrupt read as a process would."""
    try:
        return child_main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
