"""Unique jobs: an insert that finds a job with the same uniqueness key, inserted within the
period and in one of the states, returns it as a duplicate instead of inserting — race-free."""

from __future__ import annotations

import threading

from offload.dispatch._unique import PENDING_STATES
from offload.store import open_store
from offload.store._contract import Completion, Inserted, NewJob, Store
from offload.store._policy import JobPolicy

from ._helpers import claim, get, insert, wait_for_clock


def unique(
    key: str = "key-1",
    period: float | None = None,
    states: tuple[str, ...] = PENDING_STATES,
    **fields: object,
) -> NewJob:
    policy = JobPolicy(unique_key=key, unique_period=period, unique_states=states)
    return NewJob(kind="k", queue="default", args=dict(fields), policy=policy)


def test_a_duplicate_returns_the_existing_job(store: Store) -> None:
    [first] = store.job_insert_many([unique(n=1)])
    [again] = store.job_insert_many([unique(n=2)])

    assert first == Inserted(first.id, duplicate=False)
    assert again == Inserted(first.id, duplicate=True)
    assert sum(c.count for c in store.job_counts()) == 1
    assert get(store, first.id).args == {"n": 1}


def test_other_keys_are_not_duplicates(store: Store) -> None:
    a, b = insert(store, unique("a"), unique("b"))
    assert a != b


def test_only_jobs_in_the_given_states_count(store: Store) -> None:
    [first] = insert(store, unique())
    [job] = claim(store)
    store.job_complete_many([Completion(job.id, job.lease_token)])

    [pending_only] = store.job_insert_many([unique()])
    assert not pending_only.duplicate  # the completed one is not pending
    [also_completed] = store.job_insert_many([unique(states=("completed",))])
    assert also_completed == Inserted(first, duplicate=True)


def test_only_jobs_inserted_within_the_period_count(store: Store) -> None:
    [first] = insert(store, unique(period=0.05))
    [within] = store.job_insert_many([unique(period=3600)])
    assert within == Inserted(first, duplicate=True)

    wait_for_clock(store, get(store, first).inserted_at + 0.05)
    [after] = store.job_insert_many([unique(period=0.05)])
    assert not after.duplicate


def test_a_batch_with_the_same_key_twice_inserts_it_once(store: Store) -> None:
    result = store.job_insert_many([unique("a"), unique("b"), unique("a")])

    assert [r.duplicate for r in result] == [False, False, True]
    assert result[2].id == result[0].id
    assert sum(c.count for c in store.job_counts()) == 2


def test_unique_jobs_and_strict_unique_keys_work_together(store: Store) -> None:
    strict = NewJob(kind="k", queue="default", args={}, unique_key="cron:x:1")
    [a] = store.job_insert_many([strict])
    [b] = store.job_insert_many([strict])
    assert b == Inserted(a.id, duplicate=True)
    [c] = store.job_insert_many([unique()])
    assert not c.duplicate and c.id != a.id


def test_a_uniqueness_key_may_be_held_by_many_finished_jobs(store: Store) -> None:
    for _ in range(3):
        [r] = store.job_insert_many([unique()])
        assert not r.duplicate
        [job] = claim(store)
        store.job_complete_many([Completion(job.id, job.lease_token)])
    assert sum(c.count for c in store.job_counts() if c.state == "completed") == 3


def test_concurrent_enqueues_of_one_key_insert_one_job(store: Store) -> None:
    threads_n = 8
    stores = [open_store(store.url) for _ in range(threads_n)]
    barrier = threading.Barrier(threads_n)
    results: list[Inserted] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def enqueue(own: Store) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                got = own.job_insert_many([unique("race")])
                with lock:
                    results.extend(got)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=enqueue, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()

    assert errors == []
    assert len(results) == threads_n * 5
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.id for r in results}) == 1
    assert sum(c.count for c in store.job_counts()) == 1
