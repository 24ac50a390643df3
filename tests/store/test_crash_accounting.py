"""Crash accounting: a lost worker's crash is charged only to the jobs whose start the store
recorded (`ClaimParams.start`, `job_start_many`, `job_ack_claim(started=...)`); the others go
back uncharged, and a job that a lost worker held runs isolated from then on.

An expired lease is simulated with a negative lease, never by waiting.
"""

from __future__ import annotations

from offload.store._contract import ClaimedJob, ClaimParams, Lease, RescueResult, Store

from ._helpers import counter, get, insert_one, lease

EXPIRED = -1.0


def claim(
    store: Store, limit: int = 10, start: int | None = 0, lease_seconds: float = EXPIRED
) -> list[ClaimedJob]:
    return store.job_claim(ClaimParams(["default"], limit, "w1", lease_seconds, start=start))


def test_jobs_held_unstarted_go_back_uncharged_and_isolated(store: Store) -> None:
    ids = [insert_one(store) for _ in range(3)]
    held = claim(store, start=0)
    assert [(j.started, j.isolated) for j in held] == [(False, False)] * 3

    assert store.job_rescue_expired(max_crashes=1) == RescueResult(3, 0, 3)
    for job_id in ids:
        r = get(store, job_id)
        assert (r.state, r.attempt, r.crashes, r.errors) == ("available", 0, 0, [])
    assert counter(store, "rescued") == 3
    again = claim(store, start=0, lease_seconds=600)
    assert [(j.attempt, j.isolated) for j in again] == [(1, True)] * 3


def test_a_start_recorded_after_the_claim_is_charged(store: Store) -> None:
    started_id, held_id = insert_one(store), insert_one(store)
    first, second = claim(store, start=0)
    assert first.id == started_id
    assert store.job_start_many([lease(first)]) == []

    assert store.job_rescue_expired(max_crashes=3) == RescueResult(2, 0, 1)
    charged, uncharged = get(store, started_id), get(store, held_id)
    assert (charged.state, charged.attempt, charged.crashes) == ("available", 0, 1)
    assert [(e["kind"], e["attempt"]) for e in charged.errors] == [("crash", 1)]
    assert "worker lost" in charged.errors[0]["error"]
    assert (uncharged.crashes, uncharged.errors) == (0, [])
    assert all(j.isolated for j in claim(store, start=0, lease_seconds=600))


def test_a_cycle_records_starts_with_its_acknowledgements(store: Store) -> None:
    job_id = insert_one(store)
    [job] = claim(store, start=0)
    stale = Lease(job.id, job.lease_token + 1)
    got = store.job_ack_claim([], [], None, True, [stale])
    assert got.not_started == [job_id]
    got = store.job_ack_claim([], [], None, True, [lease(job)])
    assert got.not_started == []
    assert store.job_rescue_expired(max_crashes=1) == RescueResult(0, 1, 0)
    assert get(store, job_id).crashes == 1


def test_a_recorded_start_of_a_job_no_longer_running_is_lost(store: Store) -> None:
    job_id = insert_one(store)
    [job] = claim(store, start=0)
    store.job_rescue_expired(max_crashes=3)
    assert store.job_start_many([lease(job)]) == [job_id]
    assert get(store, job_id).state == "available"


def test_the_claim_records_the_start_of_at_most_once_jobs_in_free_slots(store: Store) -> None:
    once_in_slot = insert_one(store, delivery="at_most_once")
    plain_in_slot = insert_one(store)
    once_held = insert_one(store, delivery="at_most_once")
    got = {j.id: j.started for j in claim(store, start=2)}
    # At-least-once jobs record their start once they have begun; an at-most-once job held in
    # a buffer records it before it begins.
    assert got == {once_in_slot: True, plain_in_slot: False, once_held: False}

    assert store.job_rescue_expired(max_crashes=3) == RescueResult(2, 1, 2)
    abandoned = get(store, once_in_slot)
    assert (abandoned.state, abandoned.crashes) == ("dead", 1)
    assert abandoned.errors[-1]["error"] == "abandoned"
    back = get(store, once_held)
    assert (back.state, back.attempt, back.crashes, back.errors) == ("available", 0, 0, [])
    # It never started: nothing to isolate it from.
    isolated = {j.id: j.isolated for j in claim(store, start=0, lease_seconds=600)}
    assert isolated == {plain_in_slot: True, once_held: False}


def test_a_claim_without_start_records_every_start_isolated_ones_too(store: Store) -> None:
    job_id = insert_one(store)
    claim(store, start=0)
    store.job_rescue_expired(max_crashes=3)
    [job] = claim(store, start=None)
    assert (job.id, job.started, job.isolated) == (job_id, True, True)
    assert store.job_rescue_expired(max_crashes=3) == RescueResult(1, 0, 0)
    assert get(store, job_id).crashes == 1


def test_a_worker_claim_leaves_an_isolated_job_to_record_its_own_start(store: Store) -> None:
    job_id = insert_one(store, delivery="at_most_once")
    [first] = claim(store, start=1)
    store.job_rescue_expired(max_crashes=3)  # started: dead
    assert get(store, job_id).state == "dead"

    again = insert_one(store)
    claim(store, start=0)
    store.job_rescue_expired(max_crashes=3)  # unstarted: back, isolated
    [isolated] = claim(store, start=5)
    assert (isolated.id, isolated.started, isolated.isolated) == (again, False, True)
    assert first.started


def test_a_job_that_crashed_its_worker_max_crashes_times_ends_dead(store: Store) -> None:
    job_id = insert_one(store)
    for n in (1, 2):
        [job] = claim(store, start=0)
        assert store.job_start_many([lease(job)]) == []
        assert store.job_rescue_expired(max_crashes=3) == RescueResult(1, 0, 0)
        assert get(store, job_id).crashes == n
        # Held and never started in between: no crash counted.
        claim(store, start=0)
        assert store.job_rescue_expired(max_crashes=3) == RescueResult(1, 0, 1)
    [job] = claim(store, start=0)
    store.job_start_many([lease(job)])
    assert store.job_rescue_expired(max_crashes=3) == RescueResult(0, 1, 0)
    r = get(store, job_id)
    assert (r.state, r.crashes) == ("dead", 3)
    assert "lost 3 times" in r.errors[-1]["error"]
    assert [e["kind"] for e in r.errors] == ["crash"] * 3
