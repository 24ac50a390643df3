"""Kept counts: `job_counts` and the row part of `job_totals` are read from counts that the
store keeps in the statement that changes a job (0015_counts.sql on SQLite, 0016_counts.sql on
PostgreSQL), not by counting rows; whatever changes jobs, they agree with a recount."""

from __future__ import annotations

import pytest

from offload.store import open_store
from offload.store._bulk import JobMatch
from offload.store._contract import Store
from offload.store._policy import Shed
from offload.store._sql import migrations

from ._helpers import claim, complete, fail, insert, new_job
from ._raw import recount, run_sql


def kept(store: Store) -> list[tuple[str, str, int]]:
    return sorted((c.queue, c.state, c.count) for c in store.job_counts())


def started(store: Store) -> dict[tuple[str, str], int]:
    return {(t.queue, t.kind): t.value for t in store.job_totals() if t.event == "started"}


def test_counts_agree_with_a_recount_through_every_kind_of_change(store: Store) -> None:
    assert kept(store) == recount(store) == []
    ids = insert(store, *[new_job("k", "q", max_attempts=2) for _ in range(8)])
    insert(store, new_job("later", "q", scheduled_at=store.now() + 3600), new_job("x", "r"))
    assert kept(store) == recount(store)
    jobs = claim(store, ["q"], limit=5, lease_seconds=0.0)  # leases expire at once
    complete(store, jobs[0])
    fail(store, jobs[1], retry_in=None)  # dead
    fail(store, jobs[2], retry_in=0.0)  # retryable
    assert store.job_shed_many([Shed(jobs[3].id, jobs[3].lease_token, "rule", 1)]).applied
    assert kept(store) == recount(store)
    store.job_rescue_expired(max_crashes=3)  # the fifth: back to available
    store.job_promote_due()
    assert store.job_cancel(ids[7])
    assert store.job_retry(jobs[1].id)  # dead → available
    assert store.job_discard(ids[6])
    assert kept(store) == recount(store)
    assert store.job_cancel_where(JobMatch(states=("available",), kind="k")) > 0
    assert store.job_retry_where(JobMatch(states=("cancelled",))) > 0
    assert store.job_discard_where(JobMatch(queue="r")) == 1
    assert kept(store) == recount(store)
    for job in claim(store, ["q"], limit=100):
        complete(store, job, result=None)
    assert store.job_prune(dead_older_than=-1.0) >= 0
    assert kept(store) == recount(store)
    assert store.counts_fold() >= 0
    assert kept(store) == recount(store)


def test_the_starts_of_the_rows_are_kept_too(store: Store) -> None:
    insert(store, *[new_job("k", "q") for _ in range(3)])
    first = claim(store, ["q"], limit=2)
    fail(store, first[0], retry_in=0.0)
    store.job_promote_due()
    again = claim(store, ["q"], limit=3)
    assert started(store) == {("q", "k"): len(first) + len(again)}


def test_an_enqueue_rolled_back_counts_nothing(store: Store) -> None:
    insert(store, new_job("k", "q"))
    before = kept(store)
    with pytest.raises(RuntimeError, match="undo"):
        with store.transaction() as tx:
            tx.job_insert_many([new_job("k", "q"), new_job("k", "other")])
            raise RuntimeError("undo")
    assert kept(store) == before == recount(store)


@pytest.mark.engine("postgres")
def test_postgres_folds_its_deltas_and_reads_the_same_before_and_after(store: Store) -> None:
    insert(store, *[new_job("k", "q") for _ in range(4)])
    complete(store, claim(store, ["q"], limit=1)[0])
    for job in [new_job("k", "q"), new_job("k", "r")]:
        insert(store, job)  # one statement, one delta each
    unfolded = started(store), kept(store)
    assert kept(store) == recount(store)
    insert(store, new_job("k", "q"))
    assert store.counts_fold() == 1  # the reads above folded what came before
    assert store.counts_fold() == 0
    assert (started(store), kept(store)) != unfolded
    assert kept(store) == recount(store)


def test_a_store_with_jobs_before_the_counts_gets_them_counted(store_url: str) -> None:
    """The migration that adds the counts counts the rows already there."""
    store = open_store(store_url)
    store.migrate()
    try:
        insert(store, *[new_job("k", "q") for _ in range(3)], new_job("k", "r"))
        complete(store, claim(store, ["q"], limit=1)[0])
        versions = [v for v, name, _ in migrations(store.engine) if name.startswith("count")]
        if store.engine == "sqlite":
            undo = [
                "DROP TRIGGER offload_jobs_count_insert",
                "DROP TRIGGER offload_jobs_count_delete",
                "DROP TRIGGER offload_jobs_count_update",
                "DROP TABLE offload_counts",
                "DROP TABLE offload_count_batch",
            ]
        else:
            undo = [
                "DROP TRIGGER offload_jobs_count_insert ON {schema}.offload_jobs",
                "DROP TRIGGER offload_jobs_count_delete ON {schema}.offload_jobs",
                "DROP TRIGGER offload_jobs_count_update ON {schema}.offload_jobs",
                "DROP FUNCTION {schema}.offload_count_inserted()",
                "DROP FUNCTION {schema}.offload_count_deleted()",
                "DROP FUNCTION {schema}.offload_count_updated()",
                "DROP TABLE {schema}.offload_counts, {schema}.offload_count_deltas",
            ]
        listed = ", ".join(map(str, versions))
        run_sql(
            store, *undo, f"DELETE FROM {{schema}}.offload_migrations WHERE version IN ({listed})"
        )
        assert store.migrate() == versions
        assert (
            kept(store)
            == recount(store)
            == [
                ("q", "available", 2),
                ("q", "completed", 1),
                ("r", "available", 1),
            ]
        )
    finally:
        store.close()


def test_ends_stay_counted_by_span_after_their_jobs_are_pruned(store: Store) -> None:
    """`job_finished_since` reads whole 10-second spans from counts kept as jobs end
    (0016_ended.sql, 0017_ended.sql): pruning the jobs leaves their ends counted."""
    insert(store, *[new_job("k", "q", result_ttl=0.0, max_attempts=1) for _ in range(3)])
    jobs = claim(store, ["q"], limit=3)
    complete(store, jobs[0])
    complete(store, jobs[1])
    fail(store, jobs[2], retry_in=None)
    since = store.now() - 3600
    ended = {"completed": 2, "dead": 1, "retryable": 0}
    assert store.job_finished_since(since) == ended
    assert store.job_prune(dead_older_than=-1.0) == 3
    assert recount(store) == []
    assert store.counts_fold() >= 0
    assert store.job_finished_since(since) == ended
    assert store.job_finished_since(store.now() + 60) == dict.fromkeys(ended, 0)


def test_finished_since_each_answers_as_one_call_per_time(store: Store) -> None:
    insert(store, *[new_job("k", "q", max_attempts=2) for _ in range(5)])
    jobs = claim(store, ["q"], limit=5)
    complete(store, jobs[0])
    complete(store, jobs[1])
    fail(store, jobs[2], retry_in=None)
    fail(store, jobs[3], retry_in=600.0)
    now = store.now()
    sinces = [now - 3600, now - 12.5, now - 0.001, now + 0.5, now + 60]
    assert store.job_finished_since_each(sinces) == [store.job_finished_since(t) for t in sinces]
    assert store.job_finished_since_each(sinces)[0] == {"completed": 2, "dead": 1, "retryable": 1}
    assert store.job_finished_since_each([]) == []
