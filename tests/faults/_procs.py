"""Process helpers of the crash fault tests: wait for processes that are not our children to
exit (pidfds, no polling), and kill processes that escaped the harness's clean-up (a killed
supervisor's children are no longer its descendants)."""

from __future__ import annotations

import os
import select
import signal
import time

import pytest


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_gone(pids: list[int], timeout: float) -> None:
    """Wait until every process of `pids` has exited."""
    fds = {}
    for pid in pids:
        try:
            fds[pid] = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + timeout
    try:
        while fds:
            left = deadline - time.monotonic()
            ready = select.select(list(fds.values()), [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                pytest.fail(f"processes {sorted(fds)} still run {timeout:g}s on", pytrace=False)
            for pid, fd in list(fds.items()):
                if fd in ready:
                    os.close(fd)
                    del fds[pid]
    finally:
        for fd in fds.values():
            os.close(fd)
