"""Limits per key at claim time: concurrency (a mutex at 1), FIFO per key, token-bucket rates,
skipping saturated keys, and every way out of `running` freeing the key."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from offload.dispatch._limits import MAX_SCAN, LimitSpec
from offload.store import open_store
from offload.store._contract import ClaimParams, JobFilter, Lease, NewJob, Store

from ._helpers import claim, claim_one, complete, fail, get, insert, new_job, wait_for_clock

MUTEX = LimitSpec(concurrency=1)


def limited(key: str, spec: LimitSpec = MUTEX, **fields: Any) -> NewJob:
    return new_job(limit_key=key, limit=spec, **fields)


def ids(jobs: list[Any]) -> list[int]:
    return [j.id for j in jobs]


def test_a_mutex_key_runs_one_job_at_a_time(store: Store) -> None:
    a1, a2, a3 = insert(store, *[limited("shop:1") for _ in range(3)])
    first = claim(store, limit=10)
    assert ids(first) == [a1]
    assert first[0].limit_key == "shop:1"
    assert claim(store, limit=10) == []
    complete(store, first[0])
    assert ids(claim(store, limit=10)) == [a2]
    assert get(store, a3).state == "available"


def test_other_keys_and_plain_jobs_are_claimed_past_a_saturated_key(store: Store) -> None:
    a1, a2, b1, plain, a3, b2 = insert(
        store,
        limited("shop:a"),
        limited("shop:a"),
        limited("shop:b"),
        new_job(),
        limited("shop:a"),
        limited("shop:b"),
    )
    assert ids(claim(store, limit=10)) == [a1, b1, plain]
    assert {get(store, i).state for i in (a2, a3, b2)} == {"available"}


def test_a_concurrency_of_n_runs_n_at_once(store: Store) -> None:
    spec = LimitSpec(concurrency=3)
    insert(store, *[limited("api", spec) for _ in range(10)])
    first = claim(store, limit=2)
    assert len(first) == 2
    assert len(claim(store, limit=10)) == 1
    complete(store, first[0])
    assert len(claim(store, limit=10)) == 1
    assert claim(store, limit=10) == []


def test_every_way_out_of_running_frees_the_key(store: Store) -> None:
    insert(store, *[limited("k") for _ in range(6)])
    job = claim_one(store)
    complete(store, job)
    job = claim_one(store)
    fail(store, job, retry_in=3600.0)  # retryable, later
    job = claim_one(store)
    fail(store, job, retry_in=None)  # dead
    job = claim_one(store)
    assert store.job_release_many([Lease(job.id, job.lease_token)]) == 1
    job = claim_one(store, lease_seconds=0.05)
    wait_for_clock(store, store.now() + 0.1)  # the lease expiring is the behaviour
    assert store.job_rescue_expired(max_crashes=5).requeued == 1
    assert len(claim(store, limit=10)) == 1
    assert claim(store, limit=10) == []


def test_the_key_of_a_type_without_a_template_is_global_to_it(store: Store) -> None:
    spec = LimitSpec(concurrency=2)
    insert(store, *[limited("export", spec, kind="export") for _ in range(4)])
    insert(store, *[new_job("other") for _ in range(2)])
    kinds = Counter(j.kind for j in claim(store, limit=10))
    assert kinds == {"export": 2, "other": 2}


def test_fifo_claims_only_the_head_of_its_key(store: Store) -> None:
    spec = LimitSpec(concurrency=1, fifo=True)
    k1, k2 = insert(store, limited("doc:7", spec), limited("doc:7", spec))
    head = claim_one(store)
    assert head.id == k1
    fail(store, head, retry_in=3600.0)  # the head waits to retry: the scope waits with it
    assert claim(store, limit=10) == []
    assert store.job_retry(k1)
    again = claim(store, limit=10)
    assert ids(again) == [k1]
    assert claim(store, limit=10) == []
    complete(store, again[0])
    assert ids(claim(store, limit=10)) == [k2]


def test_without_fifo_the_next_job_of_a_key_runs_while_an_earlier_one_retries(
    store: Store,
) -> None:
    k1, k2 = insert(store, limited("doc:7"), limited("doc:7"))
    fail(store, claim_one(store), retry_in=3600.0)
    assert ids(claim(store, limit=10)) == [k2]
    assert get(store, k1).state == "retryable"


def test_fifo_with_concurrency_starts_the_first_n_in_order(store: Store) -> None:
    spec = LimitSpec(concurrency=2, fifo=True)
    k = insert(store, *[limited("feed", spec) for _ in range(4)])
    first = claim(store, limit=10)
    assert ids(first) == k[:2]
    fail(store, first[0], retry_in=3600.0)
    assert claim(store, limit=10) == []  # k[0] retrying and k[1] running: k[2] waits
    complete(store, first[1])
    assert ids(claim(store, limit=10)) == [k[2]]


def test_a_rate_limit_allows_its_burst_then_waits_for_tokens(store: Store) -> None:
    spec = LimitSpec(rate=3.0, period=3600.0)
    insert(store, *[limited("mail", spec) for _ in range(10)])
    first = claim(store, limit=10)
    assert len(first) == 3
    for job in first:
        complete(store, job)
    assert claim(store, limit=10) == []


def test_a_rate_limit_is_shared_by_every_claimer(store: Store) -> None:
    spec = LimitSpec(rate=4.0, period=3600.0)
    insert(store, *[limited("mail", spec) for _ in range(20)])
    other = open_store(store.url)
    try:
        taken = 0
        for s in (store, other, store, other):
            taken += len(s.job_claim(ClaimParams(["default"], 1, "w", 600.0)))
            taken += len(s.job_claim(ClaimParams(["default"], 10, "w", 600.0)))
        assert taken == 4
    finally:
        other.close()


def test_tokens_refill_with_time(store: Store) -> None:
    spec = LimitSpec(rate=1.0, period=0.2, burst=1.0)
    insert(store, *[limited("poll", spec) for _ in range(5)])
    assert len(claim(store, limit=10)) == 1
    moment = store.now()
    assert claim(store, limit=10) == []
    wait_for_clock(store, moment + 0.25)  # refilling with time is the behaviour under test
    assert len(claim(store, limit=10)) == 1


def test_a_saturated_key_with_a_backlog_is_skipped_not_spun_on(store: Store) -> None:
    first = limited("hot")
    store.job_insert_many([first] + [limited("hot") for _ in range(MAX_SCAN // 2)])
    (cold,) = insert(store, limited("cold"))
    (plain,) = insert(store, new_job())
    got = claim(store, limit=10)
    assert [j.limit_key for j in got] == ["hot", "cold", None]
    assert ids(got)[1:] == [cold, plain]


def test_a_key_declared_again_takes_the_new_numbers(store: Store) -> None:
    insert(store, *[limited("k", LimitSpec(concurrency=1)) for _ in range(3)])
    assert len(claim(store, limit=10)) == 1
    insert(store, limited("k", LimitSpec(concurrency=3)))
    assert len(claim(store, limit=10)) == 2


def test_limit_list_shows_values_in_force_and_running_jobs(store: Store) -> None:
    insert(
        store,
        limited("a", LimitSpec(concurrency=2)),
        limited("a", LimitSpec(concurrency=2)),
        limited("b", LimitSpec(rate=5.0, period=60.0)),
    )
    claim(store, limit=10)
    info = {x.key: x for x in store.limit_list()}
    assert (info["a"].concurrency, info["a"].running, info["a"].rate) == (2, 2, None)
    assert (info["b"].concurrency, info["b"].running, info["b"].rate) == (None, 1, 5.0)
    assert info["b"].tokens is not None and 3.9 <= info["b"].tokens <= 4.1


def test_concurrent_claimers_never_run_two_jobs_of_a_mutex_key(store: Store) -> None:
    keys = [f"shop:{i}" for i in range(5)]
    store.job_insert_many([limited(k) for k in keys for _ in range(12)])
    stores = [open_store(store.url) for _ in range(4)]
    lock = threading.Lock()
    worst: Counter[str] = Counter()

    def work(s: Store) -> None:
        for _ in range(1000):
            got = s.job_claim(ClaimParams(["default"], 3, "w", 600.0))
            with lock:
                running = s.job_list(JobFilter(states=["running"], limit=1000))
                for k, n in Counter(r.limit_key for r in running).items():
                    worst[str(k)] = max(worst[str(k)], n)
            for job in got:
                complete(s, job)
            if not got and not s.job_list(JobFilter(states=["available", "running"], limit=1)):
                return

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(work, stores))
    finally:
        for s in stores:
            s.close()
    assert worst and max(worst.values()) == 1, worst
    assert len(store.job_list(JobFilter(states=["completed"], limit=100))) == 60
