"""Backlog depths for load shedding: registered bounds, counts that stop at bound + 1 (never a
scan of the whole backlog), and reads that do not count."""

from __future__ import annotations

from offload.store._contract import Store
from offload.store._policy import BacklogBound

from ._helpers import between, claim, insert, new_job


def depths(store: Store) -> dict[tuple[str, str], tuple[int, int]]:
    return {(b.scope, b.name): (b.bound, b.depth) for b in store.backlog_read()}


def test_a_refresh_registers_bounds_and_counts_available_jobs(store: Store) -> None:
    insert(store, new_job("a", "q1"), new_job("a", "q1"), new_job("b", "q1"), new_job("a", "q2"))
    insert(store, new_job("a", "q1", delay=3600))  # scheduled: not in the backlog
    claim(store, ["q2"])  # running: not in the backlog either

    before = store.now()
    counted = store.backlog_refresh(
        [BacklogBound("queue", "q1", 100), BacklogBound("kind", "a", 100)]
    )
    after = store.now()

    assert {(b.scope, b.name): b.depth for b in counted} == {("queue", "q1"): 3, ("kind", "a"): 2}
    assert all(between(before, b.counted_at, after) for b in counted)
    assert depths(store) == {("queue", "q1"): (100, 3), ("kind", "a"): (100, 2)}


def test_a_count_stops_at_the_bound_plus_one(store: Store) -> None:
    insert(store, *[new_job("a", "q") for _ in range(10)])
    [row] = store.backlog_refresh([BacklogBound("queue", "q", 4)])
    assert (row.bound, row.depth) == (4, 5)


def test_a_refresh_without_bounds_recounts_every_registered_one(store: Store) -> None:
    store.backlog_refresh([BacklogBound("queue", "q", 100), BacklogBound("kind", "a", 100)])
    insert(store, new_job("a", "q"), new_job("a", "q"))
    assert depths(store) == {("queue", "q"): (100, 0), ("kind", "a"): (100, 0)}  # reads only

    counted = store.backlog_refresh()

    assert {(b.scope, b.name): b.depth for b in counted} == {("queue", "q"): 2, ("kind", "a"): 2}
    assert depths(store) == {("queue", "q"): (100, 2), ("kind", "a"): (100, 2)}


def test_the_largest_bound_registered_is_kept(store: Store) -> None:
    store.backlog_refresh([BacklogBound("queue", "q", 10)])
    store.backlog_refresh([BacklogBound("queue", "q", 50)])
    store.backlog_refresh([BacklogBound("queue", "q", 20)])
    assert depths(store) == {("queue", "q"): (50, 0)}


def test_nothing_registered_counts_nothing(store: Store) -> None:
    assert store.backlog_refresh() == []
    assert store.backlog_read() == []
