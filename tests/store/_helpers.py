"""Small builders shared by the conformance tests; they only call the store contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload.store._contract import (
    ClaimedJob,
    ClaimParams,
    Completion,
    Failure,
    JobRecord,
    Lease,
    NewJob,
    Store,
)
from tests._wait import eventually

# Store times may be rounded to microseconds by an engine; comparisons allow this much.
EPS = 1e-3


def new_job(kind: str = "k", queue: str = "default", **fields: Any) -> NewJob:
    """A job with empty arguments unless told otherwise."""
    fields.setdefault("args", {})
    return NewJob(kind=kind, queue=queue, **fields)


def insert(store: Store, *jobs: NewJob) -> list[int]:
    """Insert jobs in one call and return their ids, asserting none was a duplicate."""
    inserted = store.job_insert_many(list(jobs))
    assert [i.duplicate for i in inserted] == [False] * len(jobs)
    return [i.id for i in inserted]


def insert_one(store: Store, **fields: Any) -> int:
    return insert(store, new_job(**fields))[0]


def claim(
    store: Store,
    queues: Sequence[str] = ("default",),
    limit: int = 100,
    lease_seconds: float = 600.0,
    worker_id: str = "w1",
) -> list[ClaimedJob]:
    return store.job_claim(ClaimParams(list(queues), limit, worker_id, lease_seconds))


def claim_one(store: Store, queue: str = "default", lease_seconds: float = 600.0) -> ClaimedJob:
    """Claim exactly one job of a queue."""
    got = claim(store, [queue], limit=1, lease_seconds=lease_seconds)
    assert len(got) == 1, got
    return got[0]


def get(store: Store, job_id: int) -> JobRecord:
    record = store.job_get(job_id)
    assert record is not None, f"job {job_id} is missing"
    return record


def lease(job: ClaimedJob) -> Lease:
    return Lease(job.id, job.lease_token)


def wrong(token: int) -> int:
    """A token that is not `token` (tokens are never negative)."""
    return token + 1


def complete(store: Store, job: ClaimedJob, result: Any = None) -> None:
    assert store.job_complete_many([Completion(job.id, job.lease_token, result)]).applied == 1


def fail(store: Store, job: ClaimedJob, retry_in: float | None, error: str = "boom") -> None:
    failure = Failure(job.id, job.lease_token, error, "Traceback ...", retry_in)
    assert store.job_fail_many([failure]).applied == 1


def counter(store: Store, name: str) -> int:
    return store.counters().get(name, 0)


def between(low: float, value: float | None, high: float) -> bool:
    """`low <= value <= high`, allowing the rounding an engine may apply to stored times."""
    return value is not None and low - EPS <= value <= high + EPS


def wait_for_clock(store: Store, moment: float, limit: float = 10.0) -> None:
    """Wait until the store's clock has passed `moment` (the behaviour under test is the
    passing of time itself, so there is nothing to synchronise on)."""
    eventually(
        lambda: store.now() > moment,
        timeout=limit,
        interval=0.001,
        what=f"the store's clock to pass {moment}",
    )
