"""A throttled failure (offload/outcome.py): retried after its delay, with its attempt given
back, on every engine and on both acknowledgement paths."""

from __future__ import annotations

from offload.store._contract import AckResult, Failure, Store

from ._helpers import between, claim, claim_one, get, insert, new_job


def test_a_throttled_failure_gives_its_attempt_back(store: Store) -> None:
    insert(store, new_job(max_attempts=1))
    [job] = claim(store)
    before = store.now()
    got = store.job_fail_many(
        [Failure(job.id, job.lease_token, "Throttled: 429", "tb", 30, throttled=True)]
    )
    after = store.now()

    assert got == AckResult(1, 0)
    r = get(store, job.id)
    assert (r.state, r.attempt, r.max_attempts) == ("retryable", 0, 1)
    assert between(before + 30, r.scheduled_at, after + 30)
    [entry] = r.errors
    assert (entry["attempt"], entry["kind"], entry["error"]) == (1, "throttled", "Throttled: 429")


def test_throttles_and_failures_in_one_batch_each_count_as_told(store: Store) -> None:
    insert(store, new_job(), new_job())
    a, b = claim(store)
    got = store.job_ack_claim(
        [],
        [
            Failure(a.id, a.lease_token, "slow down", retry_in=0, throttled=True),
            Failure(b.id, b.lease_token, "bug", retry_in=0),
        ],
        None,
    )
    assert got.failed == AckResult(2, 0)
    assert (get(store, a.id).attempt, get(store, b.id).attempt) == (0, 1)
    assert [e["kind"] for e in get(store, a.id).errors] == ["throttled"]
    assert [e["kind"] for e in get(store, b.id).errors] == ["error"]

    store.job_promote_due()
    again = {j.id: j.attempt for j in claim(store)}
    assert again == {a.id: 1, b.id: 2}


def test_a_stale_throttle_changes_nothing(store: Store) -> None:
    insert(store, new_job())
    job = claim_one(store)
    got = store.job_fail_many(
        [Failure(job.id, job.lease_token + 1, "late", retry_in=0, throttled=True)]
    )
    assert got == AckResult(0, 1)
    assert (get(store, job.id).state, get(store, job.id).attempt) == ("running", 1)
