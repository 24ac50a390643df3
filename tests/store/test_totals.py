"""`job_totals`: events by queue and kind, from the rows, the totals kept for deleted rows and
the events workers report (`job_totals_add`)."""

from __future__ import annotations

from offload.store._contract import JobFilter, Store
from offload.store._policy import Shed
from offload.store._totals import JobTotal

from ._helpers import claim, claim_one, complete, fail, insert, new_job


def totals(store: Store, queue: str = "q", kind: str = "k") -> dict[str, int]:
    return {t.event: t.value for t in store.job_totals() if (t.queue, t.kind) == (queue, kind)}


def test_an_empty_store_has_no_totals(store: Store) -> None:
    assert store.job_totals() == []


def test_rows_count_enqueued_started_and_their_endings(store: Store) -> None:
    insert(store, *[new_job("k", "q") for _ in range(5)], new_job("other", "r"))
    jobs = claim(store, ["q"], limit=4)
    done, dead, again, shed = (j for j in jobs if j.kind == "k")
    complete(store, done)
    fail(store, dead, retry_in=None)
    fail(store, again, retry_in=0.0)
    assert store.job_shed_many([Shed(shed.id, shed.lease_token, "rule", 1)]).applied == 1
    store.job_promote_due()
    claim_one(store, "q")  # the retried job or the fifth: one more start either way
    got = totals(store)
    assert got["enqueued"] == 5 and got["completed"] == 1 and got["dead"] == 1
    assert got["shed"] == 1
    # starts: 4 claims, one of them shed (not counted), and one more claim
    assert got["started"] == 4
    assert totals(store, "r", "other") == {"enqueued": 1}  # zeros are left out


def test_reported_events_add_up(store: Store) -> None:
    store.job_totals_add([JobTotal("q", "k", "failed", 2), JobTotal("q", "k", "retried", 1)])
    store.job_totals_add([JobTotal("q", "k", "failed", 1), JobTotal("q", "k", "failed", 1)])
    store.job_totals_add([])
    assert totals(store) == {"failed": 4, "retried": 1}


def test_pruned_and_discarded_jobs_keep_their_counts(store: Store) -> None:
    ids = insert(
        store,
        *[new_job("k", "q", result_ttl=0.0) for _ in range(3)],
        new_job("k", "q", max_attempts=1),
    )
    for job in claim(store, ["q"], limit=4):
        if job.id == ids[3]:
            fail(store, job, retry_in=None)
        else:
            complete(store, job)
    insert(store, new_job("k", "q"))
    before = totals(store)
    assert before == {"enqueued": 5, "started": 4, "completed": 3, "dead": 1}
    assert store.job_prune(dead_older_than=-1.0) == 4
    assert store.job_discard(ids[-1] + 1)
    assert store.job_list(JobFilter(queue="q")) == []  # the rows are gone, the totals stay
    assert totals(store) == before
    assert [t for t in store.job_totals() if t.queue != "q"] == []
