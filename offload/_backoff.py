"""How long a failed job waits before its next attempt: the backoff functions a job type
declares. What an attempt's end means is decided in offload/outcome.py."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

BackoffFn = Callable[[int], float]


@dataclass(frozen=True, slots=True)
class Exponential:
    """`base * factor**(attempt-1)` seconds, capped at `maximum`, spread by ±`jitter`.

    Jitter keeps many jobs that failed together (a downstream outage) from retrying together.
    """

    base: float = 2.0
    factor: float = 2.0
    maximum: float = 3600.0
    jitter: float = 0.25

    def __call__(self, attempt: int) -> float:
        delay = min(self.maximum, self.base * self.factor ** max(attempt - 1, 0))
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(delay, 0.0)


DEFAULT_BACKOFF: BackoffFn = Exponential()  # 2 s, 4 s, 8 s … ±25%, at most an hour


def as_backoff(value: BackoffFn | float | int | None) -> BackoffFn:
    """A backoff function from a function, a constant number of seconds, or None (default)."""
    if value is None:
        return DEFAULT_BACKOFF
    if isinstance(value, bool):
        raise TypeError("backoff must be a function of the attempt number or a number of seconds")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"backoff must not be negative, got {value}")
        constant = float(value)
        return lambda attempt: constant
    if callable(value):
        return value
    raise TypeError("backoff must be a function of the attempt number or a number of seconds")
