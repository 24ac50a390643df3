"""Waiting in tests: poll a condition until a deadline, never sleep a fixed time for an event.

`eventually(check)` calls `check` until it returns something truthy and returns that value;
past `timeout` seconds it fails with `NeverHappened`, naming what never happened (`what`) and
showing `explain()`. It needs nothing from pytest, so the job apps and producer processes the
tests start wait with it too. The older `wait_until` helpers of each layer call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NeverHappened(AssertionError):
    """A condition that `eventually` waited for did not hold by its deadline."""


def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    what: str | None = None,
    explain: Callable[[], object] | None = None,
    interval: float = 0.05,
) -> T:
    """Call `check` every `interval` seconds until it returns something truthy; return that.

    Raises `NeverHappened` after `timeout` seconds, saying what was awaited and, if given,
    what `explain()` returns then (a log tail, the rows seen)."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this loop
    if timeout < 0 or interval <= 0:
        raise ValueError(f"eventually needs timeout >= 0 and interval > 0: {timeout}, {interval}")
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            awaited = what or getattr(check, "__name__", "a condition")
            message = f"timed out after {timeout:g}s waiting for {awaited}"
            if explain is not None:
                message += f"\n{explain()}"
            raise NeverHappened(message)
        time.sleep(min(interval, left))
