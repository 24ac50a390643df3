"""The SQLite engine's dispatch family: fair-queuing tags at insert and promotion, limits at
claim, adaptive reports and SLO attainment.

Every write runs under `BEGIN IMMEDIATE`, so reading a lane's clock or a key's row and writing
it back within one transaction is atomic: the policy itself runs in Python (offload/dispatch/).
A claim that skipped jobs for want of rate tokens has the doorbell ring this process's
listeners when the next token is due (_doorbell.py). The module's functions take the
transaction's connection: the jobs and maintenance families call them inside their own
transactions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from offload.dispatch import _limits as limits
from offload.dispatch import _ordering as ordering
from offload.dispatch._adaptive import Signal, adapt
from offload.store._codec import dumps
from offload.store._dispatch import (
    LimitInfo,
    LimitReport,
    SloAttainment,
    limit_info,
)
from offload.store._sql import queries
from offload.store.sqlite._base import SQLiteBase
from offload.store.sqlite._pauses import pauses_sql

if TYPE_CHECKING:
    from offload.store._contract import NewJob
    from offload.store.sqlite._doorbell import Doorbell

_FIRST = (2**62, 0.0, 0)  # a position before every candidate (priority is within +-1000)


def _d() -> dict[str, str]:
    return queries("sqlite", "dispatch")


# --- ordering ---------------------------------------------------------------------------
def tag(c: sqlite3.Connection, arrivals: Sequence[ordering.Arrival]) -> list[ordering.Tag]:
    """Reserve virtual time for each flow of a batch (one read and one write per flow) and
    tag the batch's jobs."""
    if not arrivals:
        return []
    d = _d()
    bases: dict[ordering.Flow, float] = {}
    for flow, added in ordering.demand(arrivals).items():
        queue, priority, kind, tenant = flow
        key = {"queue": queue, "priority": priority, "kind": kind, "tenant": tenant}
        stored, finish, head = c.execute(d["flow_read"], key).fetchone()
        if stored is None:
            c.execute(d["lane_ensure"], (queue, priority))
        clock = ordering.clock(stored, head)
        base, new_finish = ordering.reserve(clock, finish, added)
        c.execute(d["flow_set"], {**key, "clock": clock, "added": added, "finish": new_finish})
        bases[flow] = base
    return ordering.tag(arrivals, bases)


def advance_lanes(
    c: sqlite3.Connection,
    writes: ordering.ClockWrites,
    claimed: Sequence[Any],
    limited: bool,
    short: bool,
) -> None:
    """Move lane clocks up to the largest start tag claimed from each, on the claims that need
    it (dispatch/_ordering.py). Rows: queue 2, priority 11, order_key 12, start 14."""
    slo = any(r[12] != r[14] for r in claimed)
    if not writes.write_clock(limited, short, slo):
        return
    moved = ordering.advance({}, (((r[2], r[11]), r[14]) for r in claimed))
    for (queue, priority), clock in moved.items():
        c.execute(_d()["lane_advance"], (queue, priority, clock))


def promote(c: sqlite3.Connection, now: float) -> int:
    """Make due jobs available: scheduled ones tagged now, retryable ones as they were."""
    d = _d()
    rows = c.execute(d["job_promote_select"], (now,)).fetchall()
    fresh = [r for r in rows if r[1] == "scheduled"]
    arrivals = [ordering.Arrival(r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in fresh]
    tags = tag(c, arrivals)
    c.executemany(
        d["job_promote_tagged"], [(t.start, r[0]) for r, t in zip(fresh, tags, strict=True)]
    )
    again = [r[0] for r in rows if r[1] == "retryable"]
    if again:
        c.execute(d["job_promote_ids"], (dumps(again),))
    return len(rows)


def prune_flows(c: sqlite3.Connection) -> None:
    """Forget fair-queuing flows that no job holds any more."""
    c.execute(_d()["flow_prune"])


# --- limits at insert and claim ---------------------------------------------------------
def declare_limits(c: sqlite3.Connection, jobs: Sequence[NewJob], now: float) -> None:
    """Create or update the row of every limit key a batch names."""
    specs: dict[str, limits.LimitSpec] = {}
    for j in jobs:
        if j.limit_key is not None and j.limit is not None:
            specs[j.limit_key] = j.limit
    for key, spec in sorted(specs.items()):
        c.execute(_d()["limit_declare"], _declare_params(key, spec, now))


def plan_claim(
    c: sqlite3.Connection,
    queues: Sequence[str],
    limit: int,
    now: float,
    first: Mapping[str, Sequence[limits.Candidate]],
    doorbell: Doorbell,
    skip_kinds: Sequence[str] = (),
) -> limits.Plan:
    """Choose the jobs of a claim among limited candidates, taking rate tokens; jobs of
    `skip_kinds` (paused) are left out."""
    d = _d()
    page_sql = pauses_sql()["job_claim_page_unpaused"] if skip_kinds else d["job_claim_page"]
    skip = dumps(sorted(skip_kinds))

    def fetch(
        queue: str, after: limits.Candidate | None, excluded: frozenset[str], n: int
    ) -> list[limits.Candidate]:
        priority, order_key, last = (
            _FIRST if after is None else (after.priority, after.order_key, after.id)
        )
        params = {
            "queue": queue,
            "priority": priority,
            "order_key": order_key,
            "id": last,
            "excluded": dumps(sorted(excluded)),
            "n": n,
        }
        if skip_kinds:
            params["kinds"] = skip
        return [limits.Candidate(*r) for r in c.execute(page_sql, params)]

    def load(keys: Sequence[str]) -> dict[str, limits.KeyRow]:
        out = {}
        for key in keys:
            row = c.execute(d["limit_get"], (key,)).fetchone()
            if row is None:
                continue
            out[key] = _key_row(c, row)
        return out

    plan = limits.plan(queues, limit, fetch, load, now, first=first)
    for key, tokens in plan.token_updates():
        c.execute(d["limit_take"], (tokens, now, key))
    # Jobs skipped for want of rate tokens: wake this process's listeners when one is due
    # (a finished job's commit wakes them for a freed slot already: PRAGMA data_version).
    doorbell.ring_in(plan.next_start())
    return plan


def _key_row(c: sqlite3.Connection, row: Sequence[Any]) -> limits.KeyRow:
    d = _d()
    base = limits.KeyRow(
        key=row[0],
        concurrency=row[1],
        rate=row[2],
        period=row[3],
        burst=row[4],
        fifo=bool(row[5]),
        adapt_target=row[6],
        adapt_value=row[7],
        tokens=row[8],
        refilled_at=row[9],
    )
    concurrency, _ = limits.effective(base)
    if concurrency is None:
        return base
    running = int(c.execute(d["limit_running"], (base.key,)).fetchone()[0])
    head: frozenset[int] = frozenset()
    if base.fifo:
        rows = c.execute(d["limit_head"], {"key": base.key, "n": concurrency}).fetchall()
        head = frozenset(r[0] for r in rows if r[1] == "available")
    return replace(base, running=running, head=head)


class SQLiteDispatch(SQLiteBase):
    """The dispatch family on the SQLite engine: limits and SLO attainment."""

    @property
    def _d(self) -> dict[str, str]:
        return _d()

    def limit_prune(self, idle_before: float) -> int:
        sql = self._d["limit_prune"]
        return int(self._tx(lambda c: c.execute(sql, (float(idle_before),)).rowcount))

    def limit_report(self, reports: Sequence[LimitReport]) -> None:
        merged: dict[str, Signal] = {}
        for r in reports:
            s = merged.get(r.key, Signal())
            merged[r.key] = Signal(s.ok + r.ok, s.throttled + r.throttled, s.slow + r.slow)
        if not merged:
            return
        d = self._d

        def body(c: sqlite3.Connection) -> None:
            now = self.now()
            for key, signal in sorted(merged.items()):
                row = c.execute(d["limit_adapt_get"], (key,)).fetchone()
                if row is None:
                    continue
                target, value, low, high, step, factor, cooldown, adapted_at = row
                if target is not None and value is not None:
                    value, adapted_at = adapt(
                        value,
                        floor=low,
                        ceiling=high,
                        increase=step,
                        decrease=factor,
                        cooldown=cooldown,
                        decreased_at=adapted_at,
                        signal=signal,
                        now=now,
                    )
                c.execute(
                    d["limit_adapt_set"],
                    (value, adapted_at, signal.throttled + signal.slow, now, key),
                )

        self._tx(body)

    def limit_list(self) -> list[LimitInfo]:
        now = self.now()
        return [limit_info(r, now) for r in self._read(self._d["limit_list"])]

    def job_slo_attainment(self, since: float) -> list[SloAttainment]:
        rows = self._read(self._d["job_slo_attainment"], (since,))
        return [SloAttainment(r[0], int(r[1]), int(r[2] or 0), r[3], r[4]) for r in rows]


def _declare_params(key: str, spec: limits.LimitSpec, now: float) -> dict[str, Any]:
    return {
        "key": key,
        "concurrency": spec.concurrency,
        "rate": spec.rate,
        "period": spec.period,
        "burst": spec.burst,
        "fifo": int(spec.fifo),
        "adapt_target": spec.adapt_target,
        "adapt_min": spec.adapt_min,
        "adapt_max": spec.adapt_max,
        "adapt_step": spec.adapt_step,
        "adapt_factor": spec.adapt_factor,
        "adapt_cooldown": spec.adapt_cooldown,
        "adapt_value": spec.start_value,
        "tokens": spec.capacity,
        "now": now,
    }
