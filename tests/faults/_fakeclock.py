"""A wall clock that jumps, for processes the test starts: libfaketime (Debian's `faketime`).

`FakeClock.env` preloads libfaketime with its offset in a file (`FAKETIME_TIMESTAMP_FILE`,
re-read at every call with `FAKETIME_NO_CACHE=1`), so that `FakeClock.set` makes the clock of
running processes jump. Only the wall clock is faked (`FAKETIME_DONT_FAKE_MONOTONIC=1`), as
when NTP steps a machine's clock: `time.monotonic()` goes on undisturbed.

libfaketime 0.9.10 gets one call of Python 3.11 wrong: `time.sleep` sleeps with an absolute
monotonic deadline (`clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`), which the library
shifts by the wall-clock time and the kernel refuses (EINVAL). So such processes start through
this module (`python -m tests.faults._fakeclock worker ...`), which replaces `time.sleep` by an
equivalent relative wait and then runs the offload command line; nothing else is changed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


class FakeClock:
    """The fake wall clock: an offset in seconds from the real one, in a file."""

    def __init__(self, folder: Path) -> None:
        if not os.path.exists(LIBFAKETIME):
            message = f"{LIBFAKETIME} is missing: apt-get install faketime"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(message)
            pytest.skip(message)
        self.path = folder / "faketime"
        self.set(0)

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process on this clock."""
        return {
            "LD_PRELOAD": LIBFAKETIME,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def set(self, offset: int) -> None:
        """Make the clock `offset` seconds off the real one, at once."""
        tmp = self.path.with_suffix(".new")
        tmp.write_text(f"{offset:+d}\n")
        tmp.replace(self.path)  # a reader never sees a half-written file

    def offset(self) -> float:
        return float(self.path.read_text())

    def now(self) -> float:
        """The fake clock read from this (unfaked) process."""
        return time.time() + self.offset()


def offload_argv(*argv: str) -> list[str]:
    """Arguments for `Procs.start` that run `offload *argv` under this module's fix."""
    return ["-m", "tests.faults._fakeclock", *argv]


def _relative_sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


if __name__ == "__main__":
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` dumps every thread's stack
    time.sleep = _relative_sleep
    from offload.cli import main

    sys.argv[0] = "offload"
    main()
