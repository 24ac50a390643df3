"""`kind_runtime_add` and `kind_runtimes`: run-time reports by kind (overruns of max_run_time
and event-loop blocks) add up per kind, on every engine."""

from __future__ import annotations

import pytest

from offload.dispatch._ordering import OVERRUN_PENALTY
from offload.store._contract import Store
from offload.store._runtime import RunTimeReport

from ._helpers import claim, get, insert, new_job


def test_an_empty_store_has_no_reports(store: Store) -> None:
    assert store.kind_runtimes() == []
    store.kind_runtime_add([])
    assert store.kind_runtimes() == []


def test_overruns_add_up_per_kind_with_worst_typical_and_last_time(store: Store) -> None:
    before = store.now()
    store.kind_runtime_add(
        [
            RunTimeReport("slow", "q", "payments", 0.5, 2, 3.0, 2.0, overrun_age=0.0),
            RunTimeReport(
                "other", "r", overruns=1, overrun_seconds=1.0, worst_seconds=1.0, overrun_age=5.0
            ),
        ]
    )
    # a second batch, and two reports of one kind in one batch
    store.kind_runtime_add(
        [
            RunTimeReport("slow", "q2", "billing", 0.4, 1, 1.5, 1.5, overrun_age=1.0),
            RunTimeReport("slow", "q2", "billing", 0.4, 1, 4.0, 4.0, overrun_age=2.0),
        ]
    )
    got = {r.kind: r for r in store.kind_runtimes()}
    assert list(got) == ["other", "slow"]
    slow = got["slow"]
    assert (slow.queue, slow.owner, slow.max_run_time) == ("q2", "billing", 0.4)
    assert slow.overruns == 4 and slow.overrun_seconds == 8.5 and slow.worst_seconds == 4.0
    assert slow.typical_seconds == 8.5 / 4
    assert slow.last_overrun_at is not None and slow.last_overrun_at >= before - 1.0
    assert slow.blocks == 0 and slow.last_block_at is None and slow.typical_block is None
    assert slow.overrunning(store.now())
    assert not slow.overrunning(store.now() + 3600.0)
    assert got["other"].owner is None and got["other"].overruns == 1


def test_loop_blocks_are_kept_apart_from_overruns(store: Store) -> None:
    store.kind_runtime_add(
        [RunTimeReport("a", "q", blocks=1, blocked_seconds=0.7, worst_block=0.7, block_age=0.0)]
    )
    store.kind_runtime_add(
        [RunTimeReport("a", "q", blocks=2, blocked_seconds=1.3, worst_block=0.9, block_age=0.0)]
    )
    (a,) = store.kind_runtimes()
    assert (a.blocks, a.worst_block, a.overruns) == (3, 0.9, 0)
    assert abs(a.blocked_seconds - 2.0) < 1e-9
    assert a.last_overrun_at is None and a.last_block_at is not None
    assert a.overrunning(store.now())


def test_reports_join_a_store_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError, match="roll back"), store.transaction() as tx:
        tx.kind_runtime_add([RunTimeReport("a", "q", overruns=1, overrun_age=0.0)])
        assert [r.kind for r in tx.kind_runtimes()] == ["a"]
        raise RuntimeError("roll back")
    assert store.kind_runtimes() == []


def test_a_penalized_job_orders_after_the_others_of_its_lane(store: Store) -> None:
    """The overrun penalty (dispatch/_ordering.py) on every insert path: one job, a batch, and
    a batch with a unique key or a schedule (the column arrays on PostgreSQL)."""
    for batch in (
        [new_job("slow", penalty=OVERRUN_PENALTY)],
        [new_job("slow", penalty=OVERRUN_PENALTY), new_job("slow", penalty=OVERRUN_PENALTY)],
        [new_job("slow", penalty=OVERRUN_PENALTY, unique_key="u"), new_job("x", delay=60.0)],
    ):
        waiting = insert(store, *[new_job("quick") for _ in range(3)])
        slow = insert(store, *batch)
        later = insert(store, *[new_job("quick") for _ in range(2)])  # the head is a quick one
        penalized = [i for i, j in zip(slow, batch, strict=True) if j.penalty]
        taken = [j.id for j in claim(store, limit=10)]
        assert taken == waiting + later + penalized
        # the penalty is the job's: the flow's own jobs after it are not pushed back
        assert get(store, penalized[0]).order_key >= OVERRUN_PENALTY
