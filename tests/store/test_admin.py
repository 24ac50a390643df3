"""Reading and steering jobs: get, list, retry, cancel, counts and recent outcomes."""

from __future__ import annotations

from typing import Any

from offload.store._contract import Completion, Failure, JobFilter, QueueCount, Store

from ._helpers import between, claim, claim_one, complete, fail, get, insert, insert_one, new_job


def _ids(store: Store, **filters: Any) -> list[int]:
    return [j.id for j in store.job_list(JobFilter(**filters))]


# --- get ----------------------------------------------------------------------------------
def test_get_unknown_job_is_none(store: Store) -> None:
    assert store.job_get(987654) is None


def test_get_returns_the_job_asked_for(store: Store) -> None:
    a, b = insert(store, new_job(kind="a"), new_job(kind="b"))
    assert (get(store, a).kind, get(store, b).kind) == ("a", "b")


# --- list ---------------------------------------------------------------------------------
def test_list_is_newest_first_and_limited(store: Store) -> None:
    ids = insert(store, *[new_job() for _ in range(5)])
    assert _ids(store) == ids[::-1]
    assert _ids(store, limit=2) == [ids[4], ids[3]]


def test_list_pages_with_before_id(store: Store) -> None:
    ids = insert(store, *[new_job() for _ in range(7)])
    seen: list[int] = []
    before = None
    for _ in range(len(ids)):  # bounded: a page that repeats must fail, not loop
        page = _ids(store, limit=3, before_id=before)
        if not page:
            break
        seen.extend(page)
        before = page[-1]
    assert seen == ids[::-1]
    assert _ids(store, before_id=ids[0]) == []
    assert _ids(store, before_id=ids[3]) == ids[:3][::-1]


def test_list_filters_by_state(store: Store) -> None:
    avail, sched, running = insert(
        store, new_job(), new_job(scheduled_at=store.now() + 3600), new_job(queue="q")
    )
    claim(store, ["q"])
    assert _ids(store, states=["available"]) == [avail]
    assert _ids(store, states=["scheduled", "running"]) == [running, sched]
    assert _ids(store, states=["dead"]) == []
    assert _ids(store, states=[]) == []


def test_list_filters_by_queue_and_kind_together(store: Store) -> None:
    a_x, a_y, b_x = insert(
        store,
        new_job(queue="a", kind="x"),
        new_job(queue="a", kind="y"),
        new_job(queue="b", kind="x"),
    )
    assert _ids(store, queue="a") == [a_y, a_x]
    assert _ids(store, kind="x") == [b_x, a_x]
    assert _ids(store, queue="a", kind="x") == [a_x]
    assert _ids(store, queue="a", kind="x", states=["running"]) == []
    assert _ids(store, queue="nope") == []


def test_list_filters_by_tenants(store: Store) -> None:
    acme, globex, none, initech = insert(
        store,
        new_job(tenant="acme"),
        new_job(tenant="globex"),
        new_job(),
        new_job(tenant="initech"),
    )
    assert _ids(store, tenants=["acme"]) == [acme]
    assert _ids(store, tenants=["acme", "initech"]) == [initech, acme]
    assert _ids(store, tenants=[]) == []  # no tenant at all: nothing, not everything
    assert _ids(store) == [initech, none, globex, acme]


def test_list_returns_full_records(store: Store) -> None:
    job_id = insert_one(store, args={"n": 1}, meta={"m": 2})
    [r] = store.job_list(JobFilter())
    assert r == get(store, job_id)


# --- retry --------------------------------------------------------------------------------
def test_retry_makes_a_dead_job_available_now(store: Store) -> None:
    job_id = insert_one(store, max_attempts=5)
    fail(store, claim_one(store), retry_in=None)

    before = store.now()
    assert store.job_retry(job_id) is True
    after = store.now()

    r = get(store, job_id)
    assert r.state == "available"
    assert between(before, r.scheduled_at, after)
    assert r.finished_at is None
    assert r.max_attempts == 5
    assert len(r.errors) == 1
    assert claim_one(store).attempt == 2


def test_retry_of_an_exhausted_job_grants_one_more_attempt(store: Store) -> None:
    job_id = insert_one(store, max_attempts=1)
    fail(store, claim_one(store), retry_in=None)

    assert store.job_retry(job_id) is True

    r = get(store, job_id)
    assert r.max_attempts > r.attempt == 1
    job = claim_one(store)
    assert job.attempt <= job.max_attempts


def test_retry_of_a_retryable_job_runs_it_now(store: Store) -> None:
    job_id = insert_one(store)
    fail(store, claim_one(store), retry_in=3600)
    assert store.job_retry(job_id) is True
    assert claim_one(store).id == job_id


def test_retry_of_cancelled_and_completed_jobs(store: Store) -> None:
    cancelled, completed = insert(store, new_job(), new_job(queue="q"))
    store.job_cancel(cancelled)
    complete(store, claim_one(store, "q"), result="r")

    assert store.job_retry(cancelled) is True
    assert store.job_retry(completed) is True
    assert (get(store, cancelled).state, get(store, completed).state) == ("available", "available")
    assert get(store, completed).finished_at is None


def test_retry_of_a_scheduled_job_runs_it_now(store: Store) -> None:
    # offload.testing's drain() relies on this to run scheduled jobs at once.
    job_id = insert_one(store, scheduled_at=store.now() + 3600)
    before = store.now()
    assert store.job_retry(job_id) is True
    after = store.now()
    r = get(store, job_id)
    assert r.state == "available"
    assert between(before, r.scheduled_at, after)
    assert claim_one(store).id == job_id


def test_retry_refuses_running_available_and_unknown_jobs(store: Store) -> None:
    job_id = insert_one(store)
    waiting = insert_one(store, queue="q")
    job = claim_one(store)
    assert store.job_retry(job_id) is False
    r = get(store, job_id)
    assert (r.state, r.lease_token) == ("running", job.lease_token)
    assert store.job_retry(waiting) is False
    assert get(store, waiting).state == "available"
    assert store.job_retry(987654) is False


# --- cancel -------------------------------------------------------------------------------
def test_cancel_jobs_that_have_not_run_yet(store: Store) -> None:
    avail, sched, retry = insert(
        store, new_job(), new_job(scheduled_at=store.now() + 3600), new_job(queue="q")
    )
    fail(store, claim_one(store, "q"), retry_in=3600)

    before = store.now()
    assert [store.job_cancel(i) for i in (avail, sched, retry)] == [True, True, True]
    after = store.now()

    for job_id in (avail, sched, retry):
        r = get(store, job_id)
        assert r.state == "cancelled"
        assert between(before, r.finished_at, after)
    assert store.job_promote_due() == 0
    assert claim(store, ["default", "q"]) == []


def test_cancel_refuses_running_and_final_jobs(store: Store) -> None:
    running, done, dead, cancelled = insert(
        store, new_job(queue="r"), new_job(queue="c"), new_job(queue="d"), new_job()
    )
    job = claim_one(store, "r")
    complete(store, claim_one(store, "c"))
    fail(store, claim_one(store, "d"), retry_in=None)
    store.job_cancel(cancelled)

    assert [store.job_cancel(i) for i in (running, done, dead, cancelled)] == [False] * 4
    assert [get(store, i).state for i in (running, done, dead, cancelled)] == [
        "running",
        "completed",
        "dead",
        "cancelled",
    ]
    assert store.job_complete_many([Completion(job.id, job.lease_token)]).applied == 1
    assert store.job_cancel(987654) is False


# --- counts and recent outcomes -----------------------------------------------------------
def test_counts_per_queue_and_state(store: Store) -> None:
    insert(
        store,
        new_job(queue="a"),
        new_job(queue="a"),
        new_job(queue="a", scheduled_at=store.now() + 3600),
        new_job(queue="b"),
        new_job(queue="b"),
    )
    claim(store, ["b"], limit=1)
    got = sorted(store.job_counts(), key=lambda c: (c.queue, c.state))
    assert got == [
        QueueCount("a", "available", 2),
        QueueCount("a", "scheduled", 1),
        QueueCount("b", "available", 1),
        QueueCount("b", "running", 1),
    ]


def test_counts_of_an_empty_store(store: Store) -> None:
    assert store.job_counts() == []


def test_finished_since_counts_outcomes_after_a_time(store: Store) -> None:
    insert(store, *[new_job() for _ in range(6)])
    old, c1, c2, d1, r1, still = claim(store, limit=6)
    complete(store, old)

    since = store.now()
    assert store.job_finished_since(since) == {"completed": 0, "dead": 0, "retryable": 0}
    store.job_complete_many([Completion(c1.id, c1.lease_token), Completion(c2.id, c2.lease_token)])
    store.job_fail_many(
        [
            Failure(d1.id, d1.lease_token, "fatal", retry_in=None),
            Failure(r1.id, r1.lease_token, "again", retry_in=3600),
        ]
    )

    assert store.job_finished_since(since) == {"completed": 2, "dead": 1, "retryable": 1}
    assert store.job_finished_since(store.now() + 3600) == {
        "completed": 0,
        "dead": 0,
        "retryable": 0,
    }
    assert get(store, still.id).state == "running"
