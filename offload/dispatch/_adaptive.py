"""Adaptive limits: additive increase while jobs succeed, multiplicative decrease when the
downstream struggles (a throttling error, or a run slower than the latency bound).

`Adaptive` is declared on a `Limit`; the worker classifies each run of a limited job as a
success, a throttle or a slow success, and reports the counts per key to the store, which
applies `adapt` to the key's row (its current value, within a floor and a ceiling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from offload._errors import ConfigurationError, OffloadError

Seconds = float | int | timedelta


class Throttled(OffloadError):
    """Raise from a job when the service it calls pushes back (HTTP 429/503, quota).

    The run is retried after `retry_after` seconds when given (else the job's backoff) without
    using up an attempt, and the job's adaptive limit, if it has one, is cut (offload/outcome.py).
    """

    def __init__(self, message: str = "throttled", retry_after: Seconds | None = None) -> None:
        super().__init__(message)
        if isinstance(retry_after, timedelta):
            retry_after = retry_after.total_seconds()
        if retry_after is not None and (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, (int, float))
            or not math.isfinite(retry_after)
            or retry_after < 0
        ):
            raise ValueError(
                f"retry_after must be a non-negative number of seconds: {retry_after!r}"
            )
        self.retry_after: float | None = None if retry_after is None else float(retry_after)


@dataclass(frozen=True, slots=True)
class Adaptive:
    """Make a limit adapt: its concurrency (or, without one, its rate) starts at the declared
    value and moves between `floor` and `ceiling`.

    increase: added per full window of successes (a window is the current value's worth of
        jobs, as TCP's congestion avoidance adds one segment per round trip).
    decrease: the factor applied on a throttle, at most once per `cooldown` seconds (so that
        one burst of 429s from many workers counts once).
    on: exception types (or their names) that count as throttling, besides `offload.Throttled`.
    latency: a success slower than this many seconds counts as throttling too.
    """

    floor: float = 1.0
    ceiling: float = 100.0
    increase: float = 1.0
    decrease: float = 0.5
    on: Sequence[type[BaseException] | str] = ()
    latency: float | None = None
    cooldown: float = 1.0

    def validate(self, what: str) -> Adaptive:
        for name in ("floor", "ceiling", "increase", "cooldown"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"{what}: Adaptive {name} must be a number")
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"{what}: Adaptive {name} must be >= 0, got {value!r}")
        if self.floor <= 0 or self.ceiling < self.floor:
            raise ConfigurationError(
                f"{what}: Adaptive needs 0 < floor <= ceiling, got floor={self.floor!r} "
                f"ceiling={self.ceiling!r}"
            )
        if not 0 < self.decrease < 1:
            raise ConfigurationError(
                f"{what}: Adaptive decrease is the factor applied on throttling, 0 < decrease < 1 "
                f"(e.g. 0.5), got {self.decrease!r}"
            )
        if self.latency is not None and not self.latency > 0:
            raise ConfigurationError(f"{what}: Adaptive latency must be positive seconds")
        for t in self.on:
            if not (isinstance(t, str) or (isinstance(t, type) and issubclass(t, BaseException))):
                raise ConfigurationError(
                    f"{what}: Adaptive on= takes exception types or their names, got {t!r}"
                )
        return self

    def throttles(self, exc: BaseException) -> bool:
        """Whether an exception a job raised means the downstream is pushing back."""
        if isinstance(exc, Throttled):
            return True
        names = {c.__name__ for c in type(exc).__mro__} | {
            f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__
        }
        for t in self.on:
            if isinstance(t, str):
                if t in names:
                    return True
            elif isinstance(exc, t):
                return True
        return False


@dataclass(frozen=True, slots=True)
class Signal:
    """What runs of one key's jobs said since the last report."""

    ok: int = 0
    throttled: int = 0
    slow: int = 0


def adapt(
    value: float,
    *,
    floor: float,
    ceiling: float,
    increase: float,
    decrease: float,
    cooldown: float,
    decreased_at: float | None,
    signal: Signal,
    now: float,
) -> tuple[float, float | None]:
    """AIMD on a key's current value; returns the new value and the time of the last cut."""
    congested = signal.throttled + signal.slow
    if congested:
        if decreased_at is None or now - decreased_at >= cooldown:
            return max(floor, min(ceiling, value * decrease)), now
        return max(floor, min(ceiling, value)), decreased_at
    if signal.ok:
        value = value + increase * signal.ok / max(value, 1.0)
    return max(floor, min(ceiling, value)), decreased_at
