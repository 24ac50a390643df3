"""`job_discard`: a job deleted in any state; a running one's worker is fenced off."""

from __future__ import annotations

import pytest

from offload.store._contract import Completion, Failure, Store

from ._helpers import claim_one, complete, counter, fail, insert_one, lease


def test_discard_deletes_a_job_once(store: Store) -> None:
    job_id = insert_one(store)
    assert store.job_discard(job_id) is True
    assert store.job_get(job_id) is None
    assert store.job_discard(job_id) is False


def test_discard_of_an_unknown_job_is_false(store: Store) -> None:
    assert store.job_discard(987654) is False


@pytest.mark.parametrize("state", ["scheduled", "available", "retryable", "completed", "dead"])
def test_discard_takes_a_job_in_any_state(store: Store, state: str) -> None:
    job_id = insert_one(store, scheduled_at=store.now() + 3600 if state == "scheduled" else None)
    if state in ("retryable", "completed", "dead"):
        job = claim_one(store)
        if state == "completed":
            complete(store, job)
        else:
            fail(store, job, retry_in=3600 if state == "retryable" else None)
    assert store.job_get(job_id).state == state  # type: ignore[union-attr]
    assert store.job_discard(job_id)
    assert store.job_get(job_id) is None


def test_a_discarded_running_job_fences_off_its_worker(store: Store) -> None:
    insert_one(store)
    job = claim_one(store)
    assert store.job_discard(job.id)
    assert store.job_heartbeat([lease(job)], 60.0) == [job.id]
    before = counter(store, "stale_acks")
    done = store.job_complete_many([Completion(job.id, job.lease_token, "late")])
    assert (done.applied, done.stale) == (0, 1)
    failed = store.job_fail_many([Failure(job.id, job.lease_token, "late", "", 1.0)])
    assert (failed.applied, failed.stale) == (0, 1)
    assert counter(store, "stale_acks") == before + 2
    assert store.job_get(job.id) is None


def test_discard_leaves_other_jobs_alone(store: Store) -> None:
    keep = insert_one(store)
    drop = insert_one(store)
    store.job_discard(drop)
    assert store.job_get(keep) is not None
    assert claim_one(store).id == keep
