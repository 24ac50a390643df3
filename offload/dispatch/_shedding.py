"""Load shedding as pure logic: expiry of jobs, and backlog bounds that refuse new work.

Bounds are set per queue (`Offload(max_backlog={"imports": 10_000})`) and per job type
(`@app.job(max_backlog=5_000)`). The backlog of a scope is its number of `available` jobs. A
batch of non-critical jobs is refused when it would take a bounded scope past its bound;
`critical=True` jobs are always accepted (and still count in the backlog).

Depths are approximate on purpose: counting a 5M-row backlog on every enqueue would cost more
than the work it protects. See `offload/_admission.py` for how depths are kept fresh.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from offload._errors import ConfigurationError
from offload._time import time_problem

QUEUE = "queue"
KIND = "kind"


@dataclass(frozen=True, slots=True)
class Bound:
    """A bound on the backlog of one queue or one job type."""

    scope: str  # QUEUE or KIND
    name: str
    limit: int

    @property
    def label(self) -> str:
        return f"{'queue' if self.scope == QUEUE else 'job type'} {self.name!r}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the backlog check needs of one job being enqueued."""

    queue: str
    kind: str
    max_backlog: int | None
    critical: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a batch is refused: the bound it would pass and the depth seen."""

    bound: Bound
    depth: int
    adding: int

    def message(self, age: float) -> str:
        return (
            f"the backlog of {self.bound.label} is past its bound of {self.bound.limit} jobs "
            f"(about {self.depth} waiting, as of {age:.1f}s ago; this batch adds {self.adding}): "
            "try again later, or enqueue it with critical=True if it must not be refused"
        )


def check_bound(value: Any, what: str) -> int | None:
    """A backlog bound: a positive integer, or None for no bound."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{what} must be a positive number of jobs, got {value!r}")
    return value


def queue_bounds(value: Mapping[str, int] | None) -> dict[str, int]:
    """The `max_backlog` argument of `Offload`, checked."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            'max_backlog must map queue names to bounds, e.g. max_backlog={"imports": 10000}'
        )
    out: dict[str, int] = {}
    for queue, bound in value.items():
        if not isinstance(queue, str) or not queue:
            raise ConfigurationError(f"max_backlog: {queue!r} is not a queue name")
        checked = check_bound(bound, f"max_backlog[{queue!r}]")
        assert checked is not None
        out[queue] = checked
    return out


def needed(
    candidates: Iterable[Candidate], by_queue: Mapping[str, int]
) -> dict[tuple[str, str], tuple[Bound, int]]:
    """The bounds a batch must respect, each with how many of its jobs it adds there."""
    out: dict[tuple[str, str], tuple[Bound, int]] = {}
    for c in candidates:
        if c.critical:
            continue
        limits = []
        if c.queue in by_queue:
            limits.append(Bound(QUEUE, c.queue, by_queue[c.queue]))
        if c.max_backlog is not None:
            limits.append(Bound(KIND, c.kind, c.max_backlog))
        for bound in limits:
            key = (bound.scope, bound.name)
            have = out.get(key)
            if have is None:
                out[key] = (bound, 1)
            else:
                tighter = bound if bound.limit < have[0].limit else have[0]
                out[key] = (tighter, have[1] + 1)
    return out


def refusal(
    wanted: Mapping[tuple[str, str], tuple[Bound, int]], depths: Mapping[tuple[str, str], int]
) -> Refusal | None:
    """The first bound this batch would pass, or None when it fits.

    A batch is refused when the backlog is already at its bound, or when the batch would take
    it past the bound (a batch larger than the bound itself is refused only when the backlog is
    not empty, so a bound never makes a large batch impossible).
    """
    for key, (bound, adding) in sorted(wanted.items()):
        depth = depths.get(key, 0)
        if depth >= bound.limit or (depth > 0 and depth + adding > bound.limit):
            return Refusal(bound, depth, adding)
    return None


def expiry(value: Any, what: str = "expires") -> tuple[float | None, float | None]:
    """`expires=` as (seconds after enqueue, absolute epoch seconds); one of them is None.

    Seconds or a timedelta count from the enqueue (by the store's clock); an aware datetime is
    a moment.
    """
    if value is None:
        return None, None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigurationError(
                f"{what} must be timezone-aware, e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)"
            )
        problem = time_problem(value.timestamp())
        if problem is not None:
            raise ConfigurationError(f"{what} {value.isoformat()} is refused: {problem}")
        return None, value.timestamp()
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(
            f"{what} must be seconds, a timedelta or an aware datetime, got {value!r}"
        )
    if value < 0:
        raise ConfigurationError(f"{what} must not be negative, got {value!r}")
    if time_problem(time.time() + value) is not None:
        raise ConfigurationError(
            f"{what} of {value!r} s is refused: it would end after 9999-12-31 UTC; give less"
        )
    return float(value), None


def expired_reason(expires_at: float | None) -> str:
    """The error text recorded on a job shed because it expired."""
    return "shed: expired before it could run" + (
        "" if expires_at is None else f" (expires_at {expires_at:.3f})"
    )
