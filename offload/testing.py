"""Helpers for testing code that uses offload, on the real store and the real executor.

    from offload.testing import drain, inline, assert_enqueued

    def test_signup(app):
        signup("ada@example.com")
        assert_enqueued(app, "send_welcome", args={"email": "ada@example.com"})
        assert drain(app).completed == 1

Point the app at a temp SQLite file in tests (`Offload(f"sqlite:///{tmp_path}/jobs.db")`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from offload.app._claim_gate import ClaimGate
from offload.app._handle import Job
from offload.app._offload import Offload
from offload.app._webhooks import install as install_webhooks
from offload.jobs._encrypt import open_args
from offload.store._contract import ClaimParams, JobFilter, JobRecord
from offload.worker._ack import acknowledge
from offload.worker._executor import Executor, Outcome
from offload.worker._versions import REFUSED

__all__ = [
    "DrainResult",
    "assert_enqueued",
    "drain",
    "enqueued",
    "inline",
    "refute_enqueued",
]

_PENDING = ("scheduled", "available", "retryable")


@dataclass
class DrainResult:
    """What one `drain` ran: counts by outcome (as offload.outcome decides, the same as a
    worker's) and the outcomes themselves. `throttled` counts the retried runs that were
    throttles (`offload.Throttled`): their attempt was given back."""

    completed: int = 0
    retried: int = 0
    dead: int = 0
    throttled: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ran(self) -> int:
        return len(self.outcomes)


_draining = threading.local()


def drain(
    app: Offload,
    queues: Sequence[str] | None = None,
    *,
    with_scheduled: bool = False,
    max_jobs: int = 100_000,
) -> DrainResult:
    """Run every available job of `queues` (default: all the app's queues) until none is left.

    Jobs that enqueue more jobs get those run too. A failed job whose next attempt is
    scheduled for later is left retryable unless `with_scheduled`, which also runs jobs
    scheduled in the future, one round each. A throttled job is left retryable even then (a
    throttle gives its attempt back, so running it again at once could go on forever).
    """
    names = list(queues or sorted({j.options_.queue for j in app.jobs.values()} | {"default"}))
    result = DrainResult()
    store = app.store
    install_webhooks(app)  # deliveries of `notify=` webhooks run too, as on a worker
    finished: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    executor = Executor(app, 1, finished.put)
    gate = ClaimGate(app)
    throttled: set[int] = set()  # jobs throttled in this drain: not made due again
    _draining.active = True
    try:
        while result.ran < max_jobs:
            if with_scheduled:
                _make_due(app, throttled)
            store.job_promote_due()
            got = store.job_claim(ClaimParams(names, 1, "drain", app.config.lease_seconds))
            if not got:
                return result
            claimed = gate.apply(got)
            if not claimed:
                continue  # shed: expired, or matched a blackhole rule
            executor.submit(claimed[0])
            while True:
                try:
                    outcome = finished.get(timeout=0.05)
                    break
                except queue.Empty:
                    executor.check_timeouts()
            result.outcomes.append(outcome)
            if outcome.settled:  # it completed itself in a store transaction
                result.completed += 1
                continue
            _, _, failures = acknowledge(app, [outcome])
            if outcome.ok:
                result.completed += 1
            elif failures and failures[0].retry_in is None:
                result.dead += 1
            else:
                result.retried += 1
                if failures and failures[0].throttled:
                    result.throttled += 1
                    throttled.add(outcome.job.id)
                elif outcome.stopped == REFUSED:  # waits for a worker that knows its version
                    throttled.add(outcome.job.id)
        return result
    finally:
        _draining.active = False
        executor.close()
        app.tally.flush(store)  # failed and retried attempts, for the store's totals


def _make_due(app: Offload, throttled: set[int]) -> None:
    """Move scheduled and retryable jobs to now, so a drain runs them (not those `throttled`
    in this drain: they wait for their time)."""
    store = app.store
    for record in store.job_list(JobFilter(states=["scheduled", "retryable"], limit=10_000)):
        if record.id in throttled:
            continue
        if store.job_retry(record.id) is False:  # pragma: no cover - raced with a worker
            continue


@contextmanager
def inline(app: Offload) -> Iterator[Offload]:
    """Within the block, every enqueue runs its job (and what it enqueues) before returning."""
    previous = app.after_enqueue

    def run(jobs: list[Job]) -> None:
        if not getattr(_draining, "active", False):
            drain(app)

    app.after_enqueue = run
    try:
        yield app
    finally:
        app.after_enqueue = previous


def enqueued(
    app: Offload,
    kind: str | None = None,
    *,
    args: dict[str, Any] | None = None,
    queue: str | None = None,
    states: Sequence[str] = _PENDING,
) -> list[JobRecord]:
    """Jobs waiting to run (by default), filtered by kind, queue and a subset of arguments."""
    records = app.store.job_list(
        JobFilter(states=list(states), queue=queue, kind=kind, limit=100_000)
    )
    if args is not None:  # compared with an encrypted job's arguments opened
        records = [
            r
            for r in records
            if all(open_args(r.kind, r.args, r.meta).get(k) == v for k, v in args.items())
        ]
    return records


def assert_enqueued(
    app: Offload,
    kind: str | None = None,
    *,
    args: dict[str, Any] | None = None,
    queue: str | None = None,
    count: int | None = None,
) -> list[JobRecord]:
    """Fail unless a matching job waits to run (exactly `count` of them, when given)."""
    found = enqueued(app, kind, args=args, queue=queue)
    if not found or (count is not None and len(found) != count):
        waiting = enqueued(app)
        seen = ", ".join(f"{r.kind}({r.args})" for r in waiting[:10]) or "nothing"
        want = f"{count} " if count is not None else ""
        raise AssertionError(
            f"expected {want}enqueued {kind or 'job'} with args {args or {}} in queue "
            f"{queue or 'any'}; found {len(found)}. Waiting: {seen}"
        )
    return found


def refute_enqueued(
    app: Offload,
    kind: str | None = None,
    *,
    args: dict[str, Any] | None = None,
    queue: str | None = None,
) -> None:
    """Fail if a matching job waits to run."""
    found = enqueued(app, kind, args=args, queue=queue)
    if found:
        raise AssertionError(
            f"expected no enqueued {kind or 'job'} with args {args or {}}; found "
            f"{len(found)}: {found[0].kind}({found[0].args})"
        )
