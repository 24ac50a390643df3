"""The store operations of the dispatch policy: limits and SLO attainment (part of the contract).

`Store` inherits these; each engine implements them in its `_dispatch.py` mixin with the SQL of
its `dispatch.sql`. Ordering and limits themselves ride on `NewJob` (slo, stride, limit_key,
limit) and are applied by the engines' insert, promote and claim (see offload/dispatch/).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from offload.dispatch import _limits as limits


@dataclass(frozen=True, slots=True)
class LimitReport:
    """What runs of one key's jobs said since the worker's last report: successes, throttling
    errors and successes slower than the key's latency bound. The store adapts the key."""

    key: str
    ok: int = 0
    throttled: int = 0
    slow: int = 0


@dataclass(frozen=True, slots=True)
class LimitInfo:
    """A limit key as it stands: the values in force (adaptive ones included) and use."""

    key: str
    concurrency: int | None
    running: int
    rate: float | None
    period: float | None
    tokens: float | None
    fifo: bool
    adaptive: str | None  # 'concurrency' or 'rate' when adaptive
    adapt_min: float | None
    adapt_max: float | None
    throttles: int
    updated_at: float


@dataclass(frozen=True, slots=True)
class SloAttainment:
    """Of one job type's jobs started since a time: how many started by their deadline, and how
    late the others started (seconds)."""

    kind: str
    started: int
    on_time: int
    late_avg: float | None
    late_max: float | None

    @property
    def share(self) -> float:
        """The share started on time (1.0 when none started)."""
        return self.on_time / self.started if self.started else 1.0


class DispatchOps(abc.ABC):
    """The part of the store contract for limits and deadlines."""

    @abc.abstractmethod
    def limit_report(self, reports: Sequence[LimitReport]) -> None:
        """Adapt adaptive keys to what their runs said (AIMD within their floor and ceiling);
        count throttles on every key."""

    @abc.abstractmethod
    def limit_prune(self, idle_before: float) -> int:
        """Delete limit keys that no unfinished job names and whose state (tokens, adapted
        value, declaration) has not changed since this time; an insert declares a key anew."""

    @abc.abstractmethod
    def limit_list(self) -> list[LimitInfo]:
        """Every limit key with its values in force and its running jobs, by key."""

    @abc.abstractmethod
    def job_slo_attainment(self, since: float) -> list[SloAttainment]:
        """Per job type with an SLO: jobs started (claimed) since `since`, how many started by
        their deadline and how late the rest were, by kind."""


def limit_info(r: Sequence[Any], now: float) -> LimitInfo:
    """A `limit_list` row as the values in force now (tokens refilled to now). Its columns: key,
    concurrency, rate, period, burst, fifo, adapt_target, adapt_value, tokens, refilled_at,
    adapt_min, adapt_max, throttles, updated_at, running."""
    row = limits.KeyRow(
        r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8], r[9], running=int(r[14])
    )
    concurrency, rate = limits.effective(row)
    state = limits.key_state(row, now)
    return LimitInfo(
        key=row.key,
        concurrency=concurrency,
        running=row.running,
        rate=rate,
        period=row.period,
        tokens=state.tokens,
        fifo=row.fifo,
        adaptive=row.adapt_target,
        adapt_min=r[10],
        adapt_max=r[11],
        throttles=int(r[12]),
        updated_at=float(r[13]),
    )
