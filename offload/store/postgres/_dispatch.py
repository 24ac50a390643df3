"""The PostgreSQL engine's dispatch family: claims through limits, key declarations at insert,
adaptive reports and SLO attainment. The jobs family uses the first two through this module's
functions (which take the executor); the rest is `PostgresDispatch`, mixed into PostgresStore.

A claim whose best candidates name no limit key is one statement (`job_claim` in queries.sql).
Otherwise the claim runs here, in one transaction: pages of candidates locked with SKIP LOCKED,
the rows of their keys locked with SKIP LOCKED too (a key another claim holds counts as
saturated for this one, so claims never wait on each other), the keys' running jobs counted in
a statement of their own (its snapshot sees every claim that held those keys before), then the
choice (offload/dispatch/_limits.py) and the updates. A queue whose claims went that way keeps
going that way until a claim sees no limited job among its candidates. A claim that skipped
jobs for want of rate tokens sets the store's alarm, which wakes this process's listener when
the next token is due; a finished limited job notifies its queue (queries.sql).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from offload.dispatch import _limits as limits
from offload.dispatch import _ordering as ordering
from offload.dispatch._adaptive import Signal, adapt
from offload.store._dispatch import (
    DispatchOps,
    LimitInfo,
    LimitReport,
    SloAttainment,
    limit_info,
)
from offload.store.postgres._core import Conn, PostgresCore

if TYPE_CHECKING:
    from offload.store._contract import ClaimParams, NewJob

_FIRST = (2**62, 0.0, 0)  # a position before every candidate (priority is within +-1000)


# --- what the jobs family asks of dispatch (module functions taking the executor) ---------
def limit_declare_step(
    ex: PostgresCore, jobs: Sequence[NewJob]
) -> tuple[str, dict[str, Any]] | None:
    """The statement that declares the limit keys of a batch, or None when it names none."""
    specs: dict[str, limits.LimitSpec] = {}
    for j in jobs:
        if j.limit_key is not None and j.limit is not None:
            specs[j.limit_key] = j.limit
    if not specs:
        return None
    keys = sorted(specs)
    s = [specs[k] for k in keys]
    params: dict[str, Any] = {
        "key": keys,
        "concurrency": [x.concurrency for x in s],
        "rate": [x.rate for x in s],
        "period": [x.period for x in s],
        "burst": [x.burst for x in s],
        "fifo": [x.fifo for x in s],
        "adapt_target": [x.adapt_target for x in s],
        "adapt_min": [x.adapt_min for x in s],
        "adapt_max": [x.adapt_max for x in s],
        "adapt_step": [x.adapt_step for x in s],
        "adapt_factor": [x.adapt_factor for x in s],
        "adapt_cooldown": [x.adapt_cooldown for x in s],
        "adapt_value": [x.start_value for x in s],
        "tokens": [x.capacity for x in s],
    }
    return ex._q["limit_declare"], params


def plain_claim(ex: PostgresCore, queues: Sequence[str]) -> bool:
    """Whether a claim of these queues may be the one-statement plain claim: none of them
    had limited jobs among its candidates lately."""
    return ex._shared.limited.isdisjoint(queues)


def alarm(ex: PostgresCore) -> limits.Alarm:
    """When this process's listeners wake for jobs a claim skipped for a rate limit."""
    return ex._shared.alarm


def after_plain_claim(
    ex: PostgresCore, queues: Sequence[str], rows: Sequence[Any], limited: bool, short: bool
) -> None:
    """After a plain claim: remember queues with limited jobs among their candidates, and
    write the lanes' clocks when this claim needs it (dispatch/_ordering.py; a plain claim
    takes a lane's head, which stands for the clock otherwise)."""
    if limited:
        ex._shared.limited.update(queues)
    if ex._shared.clock_writes.write_clock(limited, short, any(r[12] != r[14] for r in rows)):
        _advance_lanes(ex, rows)


def _advance_lanes(ex: PostgresCore, rows: Sequence[Any], conn: Conn | None = None) -> None:
    """Move lane clocks up to the largest start tag (column 14) of claimed rows."""
    moved = ordering.advance({}, (((r[2], r[11]), r[14]) for r in rows))
    if not moved:
        return
    lanes = sorted(moved.items())
    params = {
        "queues": [q for (q, _), _ in lanes],
        "priorities": [p for (_, p), _ in lanes],
        "clocks": [v for _, v in lanes],
    }
    query = ex._q["lane_advance"]
    if conn is not None:
        conn.execute(query, params)
    else:
        ex._run("lane_advance", lambda c: c.execute(query, params))


def claim_limited(ex: PostgresCore, params: ClaimParams, token: int) -> list[Any]:
    """Claim through limits in one transaction; rows as `job_claim` returns them."""
    q = ex._q
    shared = ex._shared
    queues = list(dict.fromkeys(params.queues))

    def body(c: Conn) -> list[Any]:
        now = float(c.execute(q["clock"]).fetchone()[0])  # type: ignore[index]

        def fetch(
            queue: str, after: limits.Candidate | None, excluded: frozenset[str], n: int
        ) -> list[limits.Candidate]:
            priority, order_key, last = (
                _FIRST if after is None else (after.priority, after.order_key, after.id)
            )
            page = {
                "queue": queue,
                "priority": priority,
                "order_key": order_key,
                "id": last,
                "excluded": sorted(excluded),
                "n": n,
            }
            if params.skip_kinds:  # some kind is paused: the page's variant (pauses.sql)
                page["skip_kinds"] = sorted(params.skip_kinds)
                return [limits.Candidate(*r) for r in c.execute(q["job_claim_page_unpaused"], page)]
            return [limits.Candidate(*r) for r in c.execute(q["job_claim_page"], page)]

        def load(keys: Sequence[str]) -> dict[str, limits.KeyRow]:
            rows = {
                r[0]: limits.KeyRow(
                    r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8], r[9]
                )
                for r in c.execute(q["limit_lock"], {"keys": list(keys)})
            }
            counted = {}
            for key, row in rows.items():
                concurrency, _ = limits.effective(row)
                if concurrency is not None:
                    counted[key] = concurrency if row.fifo else 0
            if counted:
                usage = {"keys": list(counted), "n": list(counted.values())}
                for key, running, head in c.execute(q["limit_usage"], usage):
                    rows[key] = replace(rows[key], running=int(running), head=frozenset(head or ()))
            return rows

        plan = limits.plan(queues, params.limit, fetch, load, now)
        shared.alarm.set(plan.next_start())
        if plan.states or plan.saturated:
            shared.limited.update(queues)
        else:  # no limited job in sight any more: plain claims again
            shared.limited.difference_update(queues)
        if not plan.chosen:
            return []
        claim = {
            "ids": [x.id for x in plan.chosen],
            "worker_id": params.worker_id,
            "token": token,
            "lease_seconds": float(params.lease_seconds),
            "start": len(plan.chosen) if params.start is None else max(params.start, 0),
            "everything": params.start is None,
        }
        claimed = c.execute(q["job_claim_ids"], claim).fetchall()
        taken = plan.token_updates()
        if taken:
            c.execute(
                q["limit_take"],
                {"keys": [k for k, _ in taken], "tokens": [t for _, t in taken], "now": now},
            )
        _advance_lanes(ex, claimed, c)
        return claimed

    return ex._run("job_claim", body, idempotent=False, transaction=True)


class PostgresDispatch(PostgresCore, DispatchOps):
    """Dispatch operations: adaptive reports, limit keys and SLO attainment."""

    # --- the contract -------------------------------------------------------------------
    def limit_report(self, reports: Sequence[LimitReport]) -> None:
        merged: dict[str, Signal] = {}
        for r in reports:
            s = merged.get(r.key, Signal())
            merged[r.key] = Signal(s.ok + r.ok, s.throttled + r.throttled, s.slow + r.slow)
        if not merged:
            return
        d = self._q

        def body(c: Conn) -> None:
            keys, values, times, throttles = [], [], [], []
            for row in c.execute(d["limit_adapt_lock"], {"keys": sorted(merged)}).fetchall():
                key, target, value, low, high, step, factor, cooldown, adapted_at, now = row
                signal = merged[key]
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
                keys.append(key)
                values.append(value)
                times.append(adapted_at)
                throttles.append(signal.throttled + signal.slow)
            if keys:
                c.execute(
                    d["limit_adapt_set"],
                    {"keys": keys, "values": values, "adapted_at": times, "throttles": throttles},
                )

        self._run("limit_report", body, idempotent=False, transaction=True)

    def limit_prune(self, idle_before: float) -> int:
        return self._count("limit_prune", {"before": float(idle_before)})

    def limit_list(self) -> list[LimitInfo]:
        rows = self._rows("limit_list")
        return [limit_info(r, float(r[15])) for r in rows]

    def job_slo_attainment(self, since: float) -> list[SloAttainment]:
        rows = self._rows("job_slo_attainment", {"since": float(since)})
        return [
            SloAttainment(
                r[0],
                int(r[1]),
                int(r[2]),
                None if r[3] is None else float(r[3]),
                None if r[4] is None else float(r[4]),
            )
            for r in rows
        ]
