"""Run-time reports by job type (part of the store contract).

A job type whose runs cannot stop early (it is no iteration job) and that runs longer than its
`max_run_time`, or whose async code blocks the worker's event loop, is reported: workers add up
what they saw in memory and add it to one row per kind with their heartbeat (never one write
per job), with the kind's queue and owner. The dashboard, `offload stats` and `/metrics` read
these rows; enqueue orders the new jobs of a kind that keeps overrunning after the others of
their queue (offload/dispatch/_ordering.py). Each engine implements this in its `_runtime.py`
with its `runtime.sql`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# A kind counts as overrunning (and its new jobs order after the others of their queue) while
# its last overrun is at most this many seconds old.
OVERRUN_WINDOW = 600.0


@dataclass(frozen=True, slots=True)
class RunTimeReport:
    """What one worker saw of one kind since its last report (a delta when added).

    overrun_age and block_age: seconds since the latest overrun or loop block (None: none);
    the store stamps them with its own clock, so workers on many machines agree.
    """

    kind: str
    queue: str
    owner: str | None = None
    max_run_time: float | None = None
    overruns: int = 0
    overrun_seconds: float = 0.0  # the overrunning runs' durations, added up
    worst_seconds: float = 0.0
    overrun_age: float | None = None
    blocks: int = 0
    blocked_seconds: float = 0.0
    worst_block: float = 0.0
    block_age: float | None = None


@dataclass(frozen=True, slots=True)
class KindRunTime:
    """The kept run-time report of one kind."""

    kind: str
    queue: str
    owner: str | None
    max_run_time: float | None
    overruns: int
    overrun_seconds: float
    worst_seconds: float
    last_overrun_at: float | None
    blocks: int
    blocked_seconds: float
    worst_block: float
    last_block_at: float | None

    @property
    def typical_seconds(self) -> float | None:
        """The mean duration of the kind's overrunning runs (None: none yet)."""
        return self.overrun_seconds / self.overruns if self.overruns else None

    @property
    def typical_block(self) -> float | None:
        """The mean length of the loop blocks seen while the kind ran (None: none yet)."""
        return self.blocked_seconds / self.blocks if self.blocks else None

    def overrunning(self, now: float, window: float = OVERRUN_WINDOW) -> bool:
        """Whether the kind is still breaking its limit: its last overrun or loop block is at
        most `window` seconds old."""
        last = max(self.last_overrun_at or 0.0, self.last_block_at or 0.0)
        return last > 0.0 and now - last <= window


def merged(reports: Sequence[RunTimeReport]) -> list[RunTimeReport]:
    """Reports of the same kind folded into one (the later's queue, owner and limit), by kind:
    one upsert per kind."""
    out: dict[str, RunTimeReport] = {}
    for r in reports:
        o = out.get(r.kind)
        if o is not None:
            r = RunTimeReport(
                kind=r.kind,
                queue=r.queue,
                owner=r.owner,
                max_run_time=r.max_run_time,
                overruns=o.overruns + r.overruns,
                overrun_seconds=o.overrun_seconds + r.overrun_seconds,
                worst_seconds=max(o.worst_seconds, r.worst_seconds),
                overrun_age=_newest(o.overrun_age, r.overrun_age),
                blocks=o.blocks + r.blocks,
                blocked_seconds=o.blocked_seconds + r.blocked_seconds,
                worst_block=max(o.worst_block, r.worst_block),
                block_age=_newest(o.block_age, r.block_age),
            )
        out[r.kind] = r
    return [out[k] for k in sorted(out)]


def _newest(a: float | None, b: float | None) -> float | None:
    """The smaller of two ages, either of which may be None (nothing seen)."""
    if a is None:
        return b
    return a if b is None else min(a, b)


def from_row(row: Sequence[Any]) -> KindRunTime:
    """A kept report from an engine's `kind_runtimes` row (the table's columns in order)."""
    k, q, owner, limit, n, secs, worst, last, b, bsecs, bworst, blast = row
    return KindRunTime(
        kind=str(k),
        queue=str(q),
        owner=None if owner is None else str(owner),
        max_run_time=None if limit is None else float(limit),
        overruns=int(n),
        overrun_seconds=float(secs),
        worst_seconds=float(worst),
        last_overrun_at=None if last is None else float(last),
        blocks=int(b),
        blocked_seconds=float(bsecs),
        worst_block=float(bworst),
        last_block_at=None if blast is None else float(blast),
    )


class RunTimeOps(abc.ABC):
    """The part of the store contract for run-time reports by kind."""

    @abc.abstractmethod
    def kind_runtime_add(self, reports: Sequence[RunTimeReport]) -> None:
        """Add workers' reports to the kept ones, one upsert per kind: counts and seconds add
        up, worst durations keep the larger, last times move to the newer, and the queue,
        owner and limit are the latest reported."""

    @abc.abstractmethod
    def kind_runtimes(self) -> list[KindRunTime]:
        """Every kind's kept run-time report, by kind."""
