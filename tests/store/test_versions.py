"""Argument versions (offload/store/_versions.py), on every engine: the version column through
every insert path and the claim, the counts per kind and version, and a refusal that gives a
job back without using an attempt."""

from __future__ import annotations

from offload.store._contract import Failure, Store
from offload.store._versions import WAIT_META, Refusal, VersionCount, version_rows

from ._helpers import between, claim, claim_one, get, insert, new_job


def test_every_insert_path_stores_the_version_and_the_claim_returns_it(store: Store) -> None:
    one = insert(store, new_job(version=3))  # a single job available at once
    many = insert(store, new_job(version=2), new_job(), new_job(version=7))  # a plain batch
    later = insert(store, new_job(version=4, delay=3600))  # scheduled
    unique = insert(store, new_job(version=5, unique_key="u"))  # a unique key
    ids = one + many + later + unique
    assert [get(store, i).version for i in ids] == [3, 2, 1, 7, 4, 5]
    claimed = {j.id: j.version for j in claim(store)}
    assert claimed == {one[0]: 3, many[0]: 2, many[1]: 1, many[2]: 7, unique[0]: 5}


def test_versions_are_counted_per_kind_version_and_state(store: Store) -> None:
    insert(
        store,
        new_job("a", version=1),
        new_job("a", version=1),
        new_job("a", version=2),
        new_job("a", version=2, delay=3600),
        new_job("b"),
    )
    insert(store, new_job("done", version=9))
    [done] = claim(store, limit=1)
    assert done.kind == "a"  # the oldest first: it is running now
    counts = store.job_versions()
    assert counts == [
        VersionCount("a", 1, "available", 1),
        VersionCount("a", 1, "running", 1),
        VersionCount("a", 2, "available", 1),
        VersionCount("a", 2, "scheduled", 1),
        VersionCount("b", 1, "available", 1),
        VersionCount("done", 9, "available", 1),
    ]
    assert store.job_versions("a", states=["scheduled"]) == [VersionCount("a", 2, "scheduled", 1)]
    assert store.job_versions("nothing") == []
    rows = version_rows(store.job_versions("a"))
    assert [(r["kind"], r["version"], r["available"], r["running"], r["total"]) for r in rows] == [
        ("a", 1, 1, 1, 2),
        ("a", 2, 1, 0, 2),
    ]


def test_finished_jobs_are_not_counted(store: Store) -> None:
    insert(store, new_job(version=2), new_job(version=3))
    a, b = claim(store)
    store.job_fail_many([Failure(a.id, a.lease_token, "bug")])  # dead at once
    assert store.job_versions() == [VersionCount("k", b.version, "running", 1)]


def test_a_refusal_gives_the_attempt_back_and_keeps_the_first_refusal_time(store: Store) -> None:
    [job_id] = insert(store, new_job(version=4, max_attempts=1, meta={"tag": "x"}))
    job = claim_one(store)
    before = store.now()
    assert store.job_refuse_many([Refusal(job.id, job.lease_token, "too new", 30.0)]) == 1
    after = store.now()
    r = get(store, job_id)
    assert (r.state, r.attempt, r.version, r.lease_owner) == ("retryable", 0, 4, None)
    assert between(before + 30, r.scheduled_at, after + 30)
    first = r.meta[WAIT_META]
    assert between(before, first, after)
    assert r.meta["tag"] == "x"
    [entry] = r.errors
    assert (entry["attempt"], entry["kind"], entry["error"]) == (1, "version", "too new")

    # Refused again: the first refusal's time stays, the entry is replaced by the latest.
    store.job_promote_due()
    store.job_retry(job_id)
    again = claim_one(store)
    assert again.attempt == 1  # no attempt was used
    assert again.meta[WAIT_META] == first
    assert store.job_refuse_many([Refusal(again.id, again.lease_token, "still new", 0.0)]) == 1
    r = get(store, job_id)
    assert r.meta[WAIT_META] == first
    assert [(e["kind"], e["error"]) for e in r.errors] == [("version", "still new")]


def test_a_refusal_after_a_failure_adds_an_entry(store: Store) -> None:
    [job_id] = insert(store, new_job(version=2))
    job = claim_one(store)
    store.job_fail_many([Failure(job.id, job.lease_token, "bug", retry_in=0)])
    store.job_promote_due()
    job = claim_one(store)
    store.job_refuse_many([Refusal(job.id, job.lease_token, "too new", 0.0)])
    assert [e["kind"] for e in get(store, job_id).errors] == ["error", "version"]


def test_a_stale_refusal_changes_nothing(store: Store) -> None:
    [job_id] = insert(store, new_job(version=2))
    job = claim_one(store)
    assert store.job_refuse_many([Refusal(job.id, job.lease_token + 1, "too new", 0.0)]) == 0
    assert store.job_refuse_many([]) == 0
    r = get(store, job_id)
    assert (r.state, r.attempt, r.errors) == ("running", 1, [])
    assert WAIT_META not in r.meta
