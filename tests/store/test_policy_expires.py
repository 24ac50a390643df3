"""Load shedding by expiry: `expires_at` from the store's clock, jobs expired at enqueue stored
shed, claims that flag expired jobs, and the bounded sweep of expired waiting jobs."""

from __future__ import annotations

from offload.dispatch._limits import LimitSpec
from offload.store._contract import Failure, NewJob, Store
from offload.store._policy import JobPolicy

from ._helpers import between, claim, counter, get, insert, new_job, wait_for_clock


def expiring(seconds: float | None = None, at: float | None = None, **fields: object) -> NewJob:
    return new_job(policy=JobPolicy(expires_in=seconds, expires_at=at), **fields)


def test_expiry_counts_from_the_insert_by_the_store_clock(store: Store) -> None:
    before = store.now()
    [job_id] = insert(store, expiring(3600))
    after = store.now()

    r = get(store, job_id)
    assert r.state == "available"
    assert between(before + 3600, r.expires_at, after + 3600)


def test_an_absolute_expiry_is_kept_as_given(store: Store) -> None:
    at = store.now() + 7200
    r = get(store, insert(store, expiring(at=at))[0])
    assert between(at, r.expires_at, at)


def test_a_job_without_expiry_has_none(store: Store) -> None:
    assert get(store, insert(store, new_job())[0]).expires_at is None


def test_a_job_expired_at_enqueue_is_stored_shed_and_never_claimed(store: Store) -> None:
    zero, past = insert(store, expiring(0), expiring(at=store.now() - 1))

    for job_id in (zero, past):
        r = get(store, job_id)
        assert r.state == "shed"
        assert r.finished_at is not None
        assert r.errors[-1]["kind"] == "shed"
        assert "expired" in r.errors[-1]["error"]
    assert counter(store, "shed") == 2
    assert claim(store) == []


def test_a_claim_flags_jobs_past_their_expiry(store: Store) -> None:
    late, fresh, plain = insert(store, expiring(0.05, tenant="t"), expiring(3600), new_job())
    wait_for_clock(store, get(store, late).expires_at or 0)

    flags = {j.id: (j.expired, j.tenant) for j in claim(store)}
    assert flags == {late: (True, "t"), fresh: (False, None), plain: (False, None)}


def test_a_claim_through_limits_flags_them_too(store: Store) -> None:
    limited = {"limit_key": "shop:1", "limit": LimitSpec(concurrency=5), "tenant": "acme"}
    late, fresh = insert(store, expiring(0.05, **limited), expiring(3600, **limited))
    wait_for_clock(store, get(store, late).expires_at or 0)

    got = {j.id: (j.expired, j.tenant) for j in claim(store)}
    assert got == {late: (True, "acme"), fresh: (False, "acme")}


def test_the_sweep_sheds_waiting_jobs_past_their_expiry_only(store: Store) -> None:
    [running] = insert(store, expiring(0.2))
    assert [j.id for j in claim(store)] == [running]
    [retryable] = insert(store, expiring(0.2))
    [job] = claim(store)
    store.job_fail_many([Failure(job.id, job.lease_token, "boom", retry_in=3600)])
    available, scheduled, far, plain = insert(
        store, expiring(0.2), expiring(0.2, delay=3600), expiring(3600), new_job()
    )
    soon = (running, retryable, available, scheduled)
    wait_for_clock(store, max(get(store, j).expires_at or 0 for j in soon))

    assert store.job_shed_expired(100) == 3
    states = {j: get(store, j).state for j in (*soon, far, plain)}
    assert states == {
        running: "running",
        retryable: "shed",
        available: "shed",
        scheduled: "shed",
        far: "available",
        plain: "available",
    }
    assert counter(store, "shed") == 3
    entry = get(store, scheduled).errors[-1]
    assert (entry["kind"], entry["rule"]) == ("shed", None)
    assert store.job_shed_expired(100) == 0


def test_the_sweep_works_in_bounded_batches(store: Store) -> None:
    ids = insert(store, *[expiring(0.05) for _ in range(5)])
    wait_for_clock(store, max(get(store, j).expires_at or 0 for j in ids))

    assert [store.job_shed_expired(2) for _ in range(4)] == [2, 2, 1, 0]
    assert {get(store, j).state for j in ids} == {"shed"}
