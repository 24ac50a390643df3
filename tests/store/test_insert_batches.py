"""job_insert_many's batch paths: every returned id names the row of its input job, whether the
batch holds unique keys or not, after the newest jobs were deleted, and with the arguments
carried as JSON text."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload.store import open_store
from offload.store._codec import dumps
from offload.store._contract import Store
from tests._engines import drop_schema, make_url

from ._helpers import get, new_job


def _check(store: Store, jobs: list, ids: list[int]) -> None:  # type: ignore[type-arg]
    assert len(set(ids)) == len(ids) == len(jobs)
    for job, job_id in zip(jobs, ids, strict=True):
        record = get(store, job_id)
        assert (record.kind, record.args, record.priority) == (job.kind, job.args, job.priority)


def test_ids_name_their_rows_in_a_large_mixed_batch(store: Store) -> None:
    jobs = [
        new_job(kind=f"k{i % 7}", args={"i": i}, priority=i % 3, slo=5.0 if i % 5 == 0 else None)
        for i in range(1200)
    ]
    _check(store, jobs, [x.id for x in store.job_insert_many(jobs)])


def test_ids_after_the_newest_jobs_were_deleted(store: Store) -> None:
    first = [new_job(args={"i": i}) for i in range(10)]
    store.job_insert_many(first)
    for job_id in [x.id for x in store.job_insert_many([new_job(args={"x": 1})])]:
        assert store.job_cancel(job_id)
    store.job_prune(dead_older_than=-1.0)
    jobs = [new_job(kind="after", args={"i": i}) for i in range(5)]
    _check(store, jobs, [x.id for x in store.job_insert_many(jobs)])


def test_a_unique_key_in_the_batch_keeps_ids_in_order(store: Store) -> None:
    jobs = [new_job(args={"i": i}, unique_key="u" if i == 3 else None) for i in range(8)]
    _check(store, jobs, [x.id for x in store.job_insert_many(jobs)])


def test_carried_json_text_is_stored(store: Store) -> None:
    args = {"name": "Zoë ✓", "n": [1, 2.5, None, True]}
    job = new_job(args=args, args_json=dumps(args))
    [inserted] = store.job_insert_many([job])
    assert get(store, inserted.id).args == args


def test_single_jobs_take_consecutive_places_in_their_flow(store: Store) -> None:
    """One job per call (the one-row statement on PostgreSQL) reserves virtual time like a
    batch: each job of a flow starts where the one before it finished."""
    ids = [store.job_insert_many([new_job(kind="one", stride=2.0)])[0].id for _ in range(3)]
    keys = [get(store, i).order_key for i in ids]
    assert keys[1] - keys[0] == keys[2] - keys[1] == 2.0
    batch = store.job_insert_many([new_job(kind="one", stride=2.0) for _ in range(2)])
    assert [get(store, b.id).order_key for b in batch] == [keys[2] + 2.0, keys[2] + 4.0]


def test_a_postgres_batch_too_big_for_one_json_value_goes_as_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the PostgreSQL engine sends a batch as one jsonb value, so only it has a fallback."""
    from offload.store.postgres import _insert

    url, schema = make_url("postgres", tmp_path)
    store = open_store(url)
    try:
        store.migrate()
        monkeypatch.setattr(_insert, "JSONB_LIMIT", 10)
        jobs = [new_job(args={"i": i}) for i in range(5)]
        _check(store, jobs, [x.id for x in store.job_insert_many(jobs)])
    finally:
        store.close()
        if schema:
            drop_schema(schema)
