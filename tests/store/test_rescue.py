"""job_rescue_expired: jobs whose lease ran out are requeued or made dead, and fenced off.

An expired lease is simulated with a negative lease (claim or heartbeat), never by waiting.
"""

from __future__ import annotations

from offload.store._contract import AckResult, Completion, Failure, RescueResult, Store

from ._helpers import between, claim, claim_one, counter, get, insert_one, lease

EXPIRED = -1.0


def test_a_live_lease_is_not_rescued(store: Store) -> None:
    job_id = insert_one(store)
    claim_one(store, lease_seconds=600)
    assert store.job_rescue_expired(max_crashes=3) == RescueResult(0, 0)
    assert get(store, job_id).state == "running"


def test_rescue_with_nothing_running(store: Store) -> None:
    insert_one(store)
    assert store.job_rescue_expired(max_crashes=3) == RescueResult(0, 0)
    assert store.counters().get("rescued", 0) == 0


def test_at_least_once_job_is_requeued_with_a_crash_counted(store: Store) -> None:
    job_id = insert_one(store)
    job = claim_one(store, lease_seconds=EXPIRED)
    before = store.now()

    assert store.job_rescue_expired(max_crashes=3) == RescueResult(requeued=1, dead=0)
    after = store.now()

    r = get(store, job_id)
    assert r.state == "available"
    assert (r.crashes, r.attempt) == (1, 0)
    assert (r.lease_owner, r.lease_expires_at) == (None, None)
    assert r.finished_at is None
    [entry] = r.errors
    assert entry["kind"] == "crash"
    assert entry["attempt"] == job.attempt == 1
    assert between(before, entry["at"], after)
    assert counter(store, "rescued") == 1
    assert counter(store, "abandoned") == 0
    again = claim_one(store)
    assert (again.id, again.attempt) == (job_id, 1)


def test_a_lease_expired_by_heartbeat_is_rescued(store: Store) -> None:
    job_id = insert_one(store)
    job = claim_one(store, lease_seconds=600)
    assert store.job_heartbeat([lease(job)], EXPIRED) == []

    assert store.job_rescue_expired(max_crashes=3) == RescueResult(1, 0)
    assert get(store, job_id).state == "available"


def test_at_most_once_job_is_abandoned(store: Store) -> None:
    job_id = insert_one(store, delivery="at_most_once")
    claim_one(store, lease_seconds=EXPIRED)
    before = store.now()

    assert store.job_rescue_expired(max_crashes=3) == RescueResult(requeued=0, dead=1)
    after = store.now()

    r = get(store, job_id)
    assert r.state == "dead"
    assert between(before, r.finished_at, after)
    assert r.crashes == 1
    [entry] = r.errors
    assert (entry["kind"], entry["error"], entry["attempt"]) == ("crash", "abandoned", 1)
    assert counter(store, "abandoned") == 1
    assert counter(store, "rescued") == 0
    assert claim(store) == []


def test_a_job_that_keeps_crashing_its_worker_ends_dead(store: Store) -> None:
    job_id = insert_one(store)
    claim_one(store, lease_seconds=EXPIRED)
    assert store.job_rescue_expired(max_crashes=2) == RescueResult(1, 0)
    assert get(store, job_id).crashes == 1

    claim_one(store, lease_seconds=EXPIRED)
    assert store.job_rescue_expired(max_crashes=2) == RescueResult(0, 1)

    r = get(store, job_id)
    assert (r.state, r.crashes) == ("dead", 2)
    assert r.finished_at is not None
    assert [e["kind"] for e in r.errors] == ["crash", "crash"]
    assert [e["attempt"] for e in r.errors] == [1, 1]
    assert (counter(store, "rescued"), counter(store, "abandoned")) == (1, 1)


def test_max_crashes_of_one_kills_on_the_first_crash(store: Store) -> None:
    job_id = insert_one(store)
    claim_one(store, lease_seconds=EXPIRED)
    assert store.job_rescue_expired(max_crashes=1) == RescueResult(0, 1)
    assert get(store, job_id).state == "dead"


def test_rescue_sorts_many_jobs_at_once(store: Store) -> None:
    a = insert_one(store)
    b = insert_one(store)
    c = insert_one(store, delivery="at_most_once")
    claim(store, limit=3, lease_seconds=EXPIRED)
    live = insert_one(store)
    claim_one(store, lease_seconds=600)

    assert store.job_rescue_expired(max_crashes=5) == RescueResult(requeued=2, dead=1)
    states = [get(store, i).state for i in (a, b, c, live)]
    assert states == ["available", "available", "dead", "running"]
    assert store.job_rescue_expired(max_crashes=5) == RescueResult(0, 0)


def test_a_late_ack_after_rescue_and_reclaim_is_stale(store: Store) -> None:
    job_id = insert_one(store)
    lost = claim_one(store, lease_seconds=EXPIRED)
    store.job_rescue_expired(max_crashes=3)
    current = claim_one(store, lease_seconds=600)
    assert current.lease_token != lost.lease_token
    snapshot = get(store, job_id)

    assert store.job_complete_many([Completion(job_id, lost.lease_token, "late")]) == AckResult(
        0, 1
    )
    late_failure = Failure(job_id, lost.lease_token, "late", retry_in=None)
    assert store.job_fail_many([late_failure]) == AckResult(0, 1)
    assert store.job_heartbeat([lease(lost)], 600) == [job_id]
    assert store.job_release_many([lease(lost)]) == 0

    assert get(store, job_id) == snapshot
    assert counter(store, "stale_acks") == 2
    assert store.job_complete_many([Completion(job_id, current.lease_token, "ok")]) == AckResult(
        1, 0
    )
    r = get(store, job_id)
    assert (r.state, r.result, r.attempt) == ("completed", "ok", 1)


def test_a_late_ack_after_rescue_before_reclaim_is_stale(store: Store) -> None:
    job_id = insert_one(store)
    lost = claim_one(store, lease_seconds=EXPIRED)
    store.job_rescue_expired(max_crashes=3)

    assert store.job_complete_many([Completion(job_id, lost.lease_token)]) == AckResult(0, 1)
    assert get(store, job_id).state == "available"
