"""job_claim: order, limit, queues, lease and attempt bookkeeping, and concurrent claimers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from offload.store import open_store
from offload.store._contract import ClaimedJob, ClaimParams, QueueCount, Store

from ._helpers import between, claim, claim_one, fail, get, insert, insert_one, new_job


def _ordering_fixture(store: Store) -> list[int]:
    """Jobs inserted out of order; returns their ids in the order a claim must take them."""
    base = store.now() - 1000
    a, b, c, d, e, f = insert(
        store,
        new_job(priority=0, scheduled_at=base + 2),
        new_job(priority=5, scheduled_at=base + 3),
        new_job(priority=0, scheduled_at=base + 1),
        new_job(priority=5, scheduled_at=base + 3),
        new_job(priority=-1, scheduled_at=base),
        new_job(priority=0, scheduled_at=base + 1),
    )
    # priority first (higher first), then scheduled_at, then id (FIFO)
    return [b, d, c, f, a, e]


def test_claim_returns_jobs_by_priority_then_scheduled_at_then_id(store: Store) -> None:
    expected = _ordering_fixture(store)
    assert [j.id for j in claim(store, limit=10)] == expected


def test_claims_one_at_a_time_follow_the_same_order(store: Store) -> None:
    expected = _ordering_fixture(store)
    assert [claim_one(store).id for _ in expected] == expected
    assert claim(store) == []


def test_equal_jobs_are_claimed_first_in_first_out(store: Store) -> None:
    ids = insert(store, *[new_job() for _ in range(5)])
    ids += insert(store, *[new_job() for _ in range(5)])
    assert [claim_one(store).id for _ in ids] == ids


def test_claim_takes_at_most_limit(store: Store) -> None:
    ids = insert(store, *[new_job() for _ in range(5)])
    batches = [[j.id for j in claim(store, limit=2)] for _ in range(4)]
    assert batches == [ids[0:2], ids[2:4], ids[4:5], []]


def test_claim_with_zero_limit_or_no_queues_claims_nothing(store: Store) -> None:
    insert_one(store)
    assert claim(store, limit=0) == []
    assert claim(store, queues=[]) == []
    assert store.job_counts() == [QueueCount("default", "available", 1)]


def test_claim_only_from_the_requested_queue(store: Store) -> None:
    a1, b1, a2, c1 = insert(
        store, new_job(queue="a"), new_job(queue="b"), new_job(queue="a"), new_job(queue="c")
    )
    assert [j.id for j in claim(store, ["a"])] == [a1, a2]
    assert claim(store, ["a"]) == []
    assert claim(store, ["nope"]) == []
    assert {get(store, i).state for i in (b1, c1)} == {"available"}


def test_claim_from_several_queues_merges_them_by_priority(store: Store) -> None:
    q1p1, q1p3, q2p2, q2p4, q3p9 = insert(
        store,
        new_job(queue="q1", priority=1),
        new_job(queue="q1", priority=3),
        new_job(queue="q2", priority=2),
        new_job(queue="q2", priority=4),
        new_job(queue="q3", priority=9),
    )
    first = claim(store, ["q1", "q2"], limit=3)
    assert [j.id for j in first] == [q2p4, q1p3, q2p2]
    assert [j.queue for j in first] == ["q2", "q1", "q2"]
    assert [j.id for j in claim(store, ["q2", "q1"], limit=10)] == [q1p1]
    assert get(store, q3p9).state == "available"


def test_claim_leases_the_job_to_the_worker(store: Store) -> None:
    job_id = insert_one(
        store,
        kind="report",
        args={"n": 1},
        meta={"m": "é"},
        max_attempts=4,
        delivery="at_most_once",
        timeout=9.0,
        result_ttl=30.0,
    )
    before = store.now()
    [job] = claim(store, lease_seconds=120, worker_id="worker-7")
    after = store.now()

    assert job == ClaimedJob(
        id=job_id,
        kind="report",
        queue="default",
        args={"n": 1},
        meta={"m": "é"},
        attempt=1,
        max_attempts=4,
        delivery="at_most_once",
        timeout=9.0,
        lease_token=job.lease_token,
        result_ttl=30.0,
    )
    assert isinstance(job.lease_token, int)
    r = get(store, job_id)
    assert r.state == "running"
    assert r.attempt == 1
    assert r.lease_owner == "worker-7"
    assert r.lease_token == job.lease_token
    assert between(before + 120, r.lease_expires_at, after + 120)
    assert between(before, r.attempted_at, after)


def test_a_running_job_is_not_claimed_again(store: Store) -> None:
    insert_one(store)
    claim_one(store)
    assert claim(store) == []


def test_every_claim_increments_attempt_and_carries_a_fresh_token(store: Store) -> None:
    insert_one(store)
    first = claim_one(store)
    fail(store, first, retry_in=0)
    assert store.job_promote_due() == 1
    second = claim_one(store)
    assert (first.attempt, second.attempt) == (1, 2)
    assert second.lease_token != first.lease_token
    assert get(store, first.id).lease_token == second.lease_token


def test_scheduled_jobs_are_not_claimed(store: Store) -> None:
    # The scheduled jobs outrank the available one, yet must neither be claimed nor crowd it
    # out of a claim of one.
    at = store.now() + 3600
    later = insert(store, *[new_job(priority=10, scheduled_at=at) for _ in range(3)])
    now = insert_one(store)
    assert [j.id for j in claim(store, limit=1)] == [now]
    assert claim(store) == []
    assert {get(store, i).state for i in later} == {"scheduled"}


def test_retryable_jobs_wait_for_their_time(store: Store) -> None:
    insert_one(store)
    fail(store, claim_one(store), retry_in=3600)
    assert claim(store) == []


def test_concurrent_claimers_never_share_a_job(store: Store, store_url: str) -> None:
    ids = {i.id for i in store.job_insert_many([new_job(args={"i": i}) for i in range(2000)])}
    threads = 4
    stores = [open_store(store_url) for _ in range(threads)]
    start = threading.Barrier(threads)

    def claimer(n: int) -> list[int]:
        own = stores[n]
        params = ClaimParams(["default"], 7, f"w{n}", 600.0)
        got: list[int] = []
        start.wait()
        while batch := own.job_claim(params):
            got.extend(j.id for j in batch)
        return got

    try:
        with ThreadPoolExecutor(threads) as pool:
            per_thread = list(pool.map(claimer, range(threads)))
    finally:
        for s in stores:
            s.close()

    claimed = [i for got in per_thread for i in got]
    assert len(claimed) == len(set(claimed)), "a job was claimed twice"
    assert set(claimed) == ids, "some jobs were never claimed"
    assert store.job_counts() == [QueueCount("default", "running", 2000)]
