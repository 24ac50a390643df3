"""Acknowledgements of running jobs: complete, fail, heartbeat, release, and their fencing."""

from __future__ import annotations

from typing import Any

import pytest

from offload.store._contract import AckResult, ClaimedJob, Completion, Failure, Lease, Store

from ._helpers import between, claim, claim_one, counter, fail, get, insert, lease, new_job, wrong


def _running(store: Store, n: int = 1, **fields: Any) -> list[ClaimedJob]:
    insert(store, *[new_job(**fields) for _ in range(n)])
    jobs = claim(store, limit=n)
    assert len(jobs) == n
    return jobs


# --- complete -----------------------------------------------------------------------------
def test_complete_stores_the_result_and_ends_the_lease(store: Store) -> None:
    [job] = _running(store)
    before = store.now()
    got = store.job_complete_many([Completion(job.id, job.lease_token, {"n": 1, "s": "é"})])
    after = store.now()

    assert got == AckResult(applied=1, stale=0)
    r = get(store, job.id)
    assert r.state == "completed"
    assert r.result == {"n": 1, "s": "é"}
    assert between(before, r.finished_at, after)
    assert (r.lease_owner, r.lease_expires_at) == (None, None)
    assert r.attempt == 1


@pytest.mark.parametrize("result", [None, 0, False, "text", [1, "two", None], {"a": {"b": []}}])
def test_any_json_result_round_trips(store: Store, result: Any) -> None:
    [job] = _running(store)
    store.job_complete_many([Completion(job.id, job.lease_token, result)])
    assert get(store, job.id).result == result


def test_complete_many_in_one_call(store: Store) -> None:
    jobs = _running(store, 3)
    got = store.job_complete_many([Completion(j.id, j.lease_token, j.id) for j in jobs])
    assert got == AckResult(3, 0)
    assert [(get(store, j.id).state, get(store, j.id).result) for j in jobs] == [
        ("completed", j.id) for j in jobs
    ]


def test_complete_nothing(store: Store) -> None:
    assert store.job_complete_many([]) == AckResult(0, 0)
    assert counter(store, "stale_acks") == 0


def test_complete_with_a_wrong_token_changes_nothing(store: Store) -> None:
    [job] = _running(store)
    before = get(store, job.id)

    got = store.job_complete_many([Completion(job.id, wrong(job.lease_token), "late")])

    assert got == AckResult(applied=0, stale=1)
    assert get(store, job.id) == before
    assert counter(store, "stale_acks") == 1


def test_completing_twice_is_stale_the_second_time(store: Store) -> None:
    [job] = _running(store)
    done = Completion(job.id, job.lease_token, "first")
    assert store.job_complete_many([done]) == AckResult(1, 0)
    assert store.job_complete_many([Completion(job.id, job.lease_token, "second")]) == AckResult(
        0, 1
    )
    assert get(store, job.id).result == "first"
    assert counter(store, "stale_acks") == 1


def test_a_batch_with_stale_and_fresh_acks_applies_the_fresh_ones(store: Store) -> None:
    a, b, c = _running(store, 3)
    got = store.job_complete_many(
        [
            Completion(a.id, a.lease_token),
            Completion(b.id, wrong(b.lease_token)),
            Completion(c.id, c.lease_token),
        ]
    )
    assert got == AckResult(applied=2, stale=1)
    assert [get(store, j.id).state for j in (a, b, c)] == ["completed", "running", "completed"]
    assert counter(store, "stale_acks") == 1


def test_stale_acks_accumulate(store: Store) -> None:
    [job] = _running(store)
    bad = Completion(job.id, wrong(job.lease_token))
    store.job_complete_many([bad, bad])
    store.job_fail_many([Failure(job.id, wrong(job.lease_token), "x", retry_in=None)])
    assert counter(store, "stale_acks") == 3


def test_complete_of_an_unknown_job_is_stale(store: Store) -> None:
    assert store.job_complete_many([Completion(424242, 1)]) == AckResult(0, 1)


# --- fail ---------------------------------------------------------------------------------
def test_fail_with_retry_in_makes_the_job_retryable_later(store: Store) -> None:
    [job] = _running(store)
    before = store.now()
    got = store.job_fail_many([Failure(job.id, job.lease_token, "boom", "Traceback: x", 3600)])
    after = store.now()

    assert got == AckResult(1, 0)
    r = get(store, job.id)
    assert r.state == "retryable"
    assert between(before + 3600, r.scheduled_at, after + 3600)
    assert r.finished_at is None
    assert (r.lease_owner, r.lease_expires_at) == (None, None)
    [entry] = r.errors
    assert entry["attempt"] == 1
    assert entry["error"] == "boom"
    assert entry["traceback"] == "Traceback: x"
    assert entry["kind"] == "error"
    assert between(before, entry["at"], after)


def test_fail_without_retry_in_makes_the_job_dead(store: Store) -> None:
    [job] = _running(store)
    before = store.now()
    got = store.job_fail_many([Failure(job.id, job.lease_token, "fatal", "tb", None)])
    after = store.now()

    assert got == AckResult(1, 0)
    r = get(store, job.id)
    assert r.state == "dead"
    assert between(before, r.finished_at, after)
    assert (r.lease_owner, r.lease_expires_at) == (None, None)
    assert [(e["attempt"], e["error"], e["traceback"]) for e in r.errors] == [(1, "fatal", "tb")]


def test_every_failed_attempt_adds_an_error_entry_in_order(store: Store) -> None:
    [job] = _running(store)
    fail(store, job, retry_in=0, error="first")
    store.job_promote_due()
    fail(store, claim_one(store), retry_in=0, error="second")
    store.job_promote_due()
    fail(store, claim_one(store), retry_in=None, error="last")

    r = get(store, job.id)
    assert r.state == "dead"
    assert [(e["attempt"], e["error"]) for e in r.errors] == [
        (1, "first"),
        (2, "second"),
        (3, "last"),
    ]


def test_fail_with_a_wrong_token_changes_nothing(store: Store) -> None:
    [job] = _running(store)
    before = get(store, job.id)
    got = store.job_fail_many(
        [
            Failure(job.id, wrong(job.lease_token), "late", retry_in=1),
            Failure(job.id, wrong(job.lease_token), "late", retry_in=None),
        ]
    )
    assert got == AckResult(applied=0, stale=2)
    assert get(store, job.id) == before
    assert counter(store, "stale_acks") == 2


def test_fail_after_complete_is_stale(store: Store) -> None:
    [job] = _running(store)
    store.job_complete_many([Completion(job.id, job.lease_token, 1)])
    got = store.job_fail_many([Failure(job.id, job.lease_token, "late", retry_in=None)])
    assert got == AckResult(0, 1)
    r = get(store, job.id)
    assert (r.state, r.result, r.errors) == ("completed", 1, [])


def test_fail_many_mixes_retries_and_deaths(store: Store) -> None:
    a, b = _running(store, 2)
    got = store.job_fail_many(
        [Failure(a.id, a.lease_token, "a", retry_in=60), Failure(b.id, b.lease_token, "b")]
    )
    assert got == AckResult(2, 0)
    assert (get(store, a.id).state, get(store, b.id).state) == ("retryable", "dead")


def test_fail_nothing(store: Store) -> None:
    assert store.job_fail_many([]) == AckResult(0, 0)


# --- heartbeat ----------------------------------------------------------------------------
def test_heartbeat_extends_the_lease(store: Store) -> None:
    [job] = _running(store)
    old = get(store, job.id).lease_expires_at
    assert old is not None

    before = store.now()
    assert store.job_heartbeat([lease(job)], 3600) == []
    after = store.now()

    r = get(store, job.id)
    assert r.lease_expires_at is not None and r.lease_expires_at > old
    assert between(before + 3600, r.lease_expires_at, after + 3600)
    assert (r.state, r.lease_token) == ("running", job.lease_token)


def test_heartbeat_reports_lost_leases_and_leaves_them_alone(store: Store) -> None:
    live, stolen, finished = _running(store, 3)
    store.job_complete_many([Completion(finished.id, finished.lease_token)])
    stolen_before = get(store, stolen.id)

    lost = store.job_heartbeat(
        [lease(live), Lease(stolen.id, wrong(stolen.lease_token)), lease(finished)], 3600
    )

    assert sorted(lost) == sorted([stolen.id, finished.id])
    assert get(store, stolen.id) == stolen_before
    assert get(store, finished.id).state == "completed"


def test_heartbeat_nothing(store: Store) -> None:
    assert store.job_heartbeat([], 60) == []


# --- release ------------------------------------------------------------------------------
def test_release_puts_the_job_back_without_counting_the_attempt(store: Store) -> None:
    [job] = _running(store)
    assert store.job_release_many([lease(job)]) == 1

    r = get(store, job.id)
    assert (r.state, r.attempt) == ("available", 0)
    assert (r.lease_owner, r.lease_expires_at) == (None, None)
    again = claim_one(store)
    assert (again.id, again.attempt) == (job.id, 1)
    assert again.lease_token != job.lease_token


def test_release_after_a_failed_attempt_keeps_that_attempt(store: Store) -> None:
    [job] = _running(store)
    fail(store, job, retry_in=0)
    store.job_promote_due()
    second = claim_one(store)
    assert store.job_release_many([lease(second)]) == 1
    assert get(store, job.id).attempt == 1


def test_release_with_a_wrong_token_or_of_a_finished_job_does_nothing(store: Store) -> None:
    running, done = _running(store, 2)
    store.job_complete_many([Completion(done.id, done.lease_token)])

    got = store.job_release_many([Lease(running.id, wrong(running.lease_token)), lease(done)])

    assert got == 0
    assert get(store, running.id).state == "running"
    assert get(store, done.id).state == "completed"


def test_the_old_token_of_a_released_job_is_stale(store: Store) -> None:
    [job] = _running(store)
    store.job_release_many([lease(job)])
    again = claim_one(store)
    assert store.job_complete_many([Completion(job.id, job.lease_token)]) == AckResult(0, 1)
    assert store.job_complete_many([Completion(again.id, again.lease_token)]) == AckResult(1, 0)


def test_release_nothing(store: Store) -> None:
    assert store.job_release_many([]) == 0
