"""Topics, the log and consumer groups in the store (offload/store/_events.py), on every engine:
gap-free offsets per partition that commit in order, reads by offset and time, fenced offset
commits, partition handovers, replay and retention."""

from __future__ import annotations

import threading
import time

from offload.store._contract import Failure, Store
from offload.store._events import NewEvent, TopicSpec

from ._helpers import claim_one, get, new_job
from .test_caller_transaction import caller_connection


def ev(part: int, n: int, key: str | None = None) -> NewEvent:
    return NewEvent(part, key, str(n))


def test_events_get_gap_free_offsets_per_partition_and_read_in_order(store: Store) -> None:
    spec = store.topic_ensure(TopicSpec("orders", 3, 3600.0, None))
    assert spec == TopicSpec("orders", 3, 3600.0, None)
    placed = store.event_append("orders", [ev(0, 1), ev(1, 2), ev(0, 3, "k")])
    assert [(p.part, p.position) for p in placed] == [(0, 0), (1, 0), (0, 1)]
    placed = store.event_append("orders", [ev(0, 4), ev(2, 5)])
    assert [(p.part, p.position) for p in placed] == [(0, 2), (2, 0)]

    read = store.event_read("orders", 0, -1, 10)
    assert [(e.position, e.payload, e.key) for e in read] == [
        (0, 1, None),
        (1, 3, "k"),
        (2, 4, None),
    ]
    assert [e.position for e in store.event_read("orders", 0, 0, 1)] == [1]
    assert store.event_read("orders", 0, 2, 10) == []
    heads = {p.part: (p.head, p.first, p.count) for p in store.partition_list("orders")}
    assert heads == {0: (3, 0, 3), 1: (1, 0, 1), 2: (1, 0, 1)}


def test_partitions_only_grow(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 4))
    assert store.topic_ensure(TopicSpec("t", 2)).partitions == 4
    assert store.topic_ensure(TopicSpec("t", 6, None, 10)).partitions == 6
    assert [p.part for p in store.partition_list("t")] == list(range(6))
    assert store.topic_specs() == [TopicSpec("t", 6, None, 10)]


def test_a_rolled_back_publish_leaves_no_event_and_no_gap(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 1))
    with caller_connection(store) as conn:
        store.bind(conn).event_append("t", [ev(0, 1), ev(0, 2)])
        conn.rollback()
    assert store.event_read("t", 0, -1, 10) == []
    [placed] = store.event_append("t", [ev(0, 3)])
    assert placed.position == 0  # the rolled-back offsets are given back


def test_a_later_publish_waits_for_an_earlier_one_to_commit(store: Store) -> None:
    """The late-commit gap: offset 1 must not become visible while offset 0 is uncommitted,
    or a reader past 1 would never read 0."""
    store.topic_ensure(TopicSpec("t", 1))
    seen: list[int] = []
    second: list[int] = []
    with caller_connection(store) as conn:
        [first] = store.bind(conn).event_append("t", [ev(0, 1)])
        assert first.position == 0

        def publish() -> None:
            second.append(store.event_append("t", [ev(0, 2)])[0].position)

        t = threading.Thread(target=publish)
        t.start()
        time.sleep(0.3)  # give the second publisher the time to overtake, if it could
        seen = [e.position for e in store.event_read("t", 0, -1, 10)]
        conn.commit()
    t.join(30)
    assert seen == []  # nothing visible before the first commits, not offset 1 alone
    assert second == [1]
    assert [e.position for e in store.event_read("t", 0, -1, 10)] == [0, 1]


def test_concurrent_publishers_and_a_tailing_reader_miss_nothing(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 2))
    per_thread, threads = 60, 4
    got: dict[int, list[int]] = {0: [], 1: []}
    done = threading.Event()

    def publish(n: int) -> None:
        for i in range(per_thread):
            store.event_append("t", [ev(i % 2, n * 1000 + i)])

    def tail() -> None:
        cursor = {0: -1, 1: -1}
        while True:
            finished = done.is_set()
            for part in (0, 1):
                for e in store.event_read("t", part, cursor[part], 50):
                    got[part].append(e.position)
                    cursor[part] = e.position
            if finished:
                return

    reader = threading.Thread(target=tail)
    reader.start()
    workers = [threading.Thread(target=publish, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    done.set()
    reader.join(60)
    total = per_thread * threads
    assert got[0] == list(range(total // 2))
    assert got[1] == list(range(total // 2))


def test_offset_at_a_time(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 1))
    store.event_append("t", [ev(0, 1)])
    middle = store.now()
    time.sleep(0.01)
    store.event_append("t", [ev(0, 2), ev(0, 3)])
    assert store.event_offset_at("t", 0, 0.0) == 0
    assert store.event_offset_at("t", 0, middle) == 1
    assert store.event_offset_at("t", 0, store.now() + 10) == 3  # the head


def test_a_group_partition_is_held_by_one_live_job(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 1))
    first = store.group_start("t", "g", 0, 0, new_job("consume"))
    assert first is not None
    assert store.group_start("t", "g", 0, 0, new_job("consume")) is None  # held already
    [pos] = store.group_positions("t", "g")
    assert (pos.next_offset, pos.job_id, pos.job_state) == (0, first, "available")

    job = claim_one(store)
    assert job.id == first
    store.job_fail_many([Failure(job.id, job.lease_token, "boom", retry_in=None)])
    assert get(store, first).state == "dead"
    second = store.group_start("t", "g", 0, 0, new_job("consume"))  # a dead holder is replaced
    assert second is not None and second != first
    assert store.group_positions("t", "g")[0].job_id == second


def test_offset_commits_are_fenced_by_lease_holder_and_position(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 1))
    store.event_append("t", [ev(0, n) for n in range(5)])
    holder = store.group_start("t", "g", 0, 0, new_job("consume"))
    job = claim_one(store)
    assert job.id == holder
    token = job.lease_token

    assert not store.group_commit("t", "g", 0, job.id, token + 1, 0, 2)  # stale lease
    assert not store.group_commit("t", "g", 0, job.id, token, 1, 2)  # not where it read
    assert store.group_commit("t", "g", 0, job.id, token, 0, 2)
    assert store.group_positions("t", "g")[0].next_offset == 2
    assert store.group_positions("t", "g")[0].lag == 3

    # A replay moves the position: the batch in flight (read from 2) commits nothing.
    assert store.group_set("t", "g", {0: 0}) == 1
    assert not store.group_commit("t", "g", 0, job.id, token, 2, 5)
    assert store.group_positions("t", "g")[0].next_offset == 0

    # The handover makes a new holder in one transaction; the old job can commit no more.
    successor = store.group_handover("t", "g", 0, job.id, token, new_job("consume"))
    assert successor is not None
    assert store.group_positions("t", "g")[0].job_id == successor
    assert not store.group_commit("t", "g", 0, job.id, token, 0, 1)
    assert store.group_handover("t", "g", 0, job.id, token, new_job("consume")) is None


def test_an_offset_commit_joins_the_callers_transaction(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 1))
    store.event_append("t", [ev(0, 1)])
    store.group_start("t", "g", 0, 0, new_job("consume"))
    job = claim_one(store)
    with caller_connection(store) as conn:
        assert store.bind(conn).group_commit("t", "g", 0, job.id, job.lease_token, 0, 1)
        conn.rollback()
    assert store.group_positions("t", "g")[0].next_offset == 0
    with caller_connection(store) as conn:
        assert store.bind(conn).group_commit("t", "g", 0, job.id, job.lease_token, 0, 1)
        conn.commit()
    assert store.group_positions("t", "g")[0].next_offset == 1


def test_retention_keeps_what_a_group_has_not_read_unless_told(store: Store) -> None:
    spec = store.topic_ensure(TopicSpec("t", 1, None, 2))  # keep the last 2 events
    store.event_append("t", [ev(0, n) for n in range(6)])
    store.group_start("t", "g", 0, 1, new_job("consume"))  # the group is at offset 1

    kept = store.event_prune(spec, store.now(), keep_unconsumed=True)
    assert (kept.removed, kept.unconsumed) == (1, 0)
    assert [e.position for e in store.event_read("t", 0, -1, 10)] == [1, 2, 3, 4, 5]

    pruned = store.event_prune(spec, store.now(), keep_unconsumed=False)
    assert (pruned.removed, pruned.unconsumed) == (3, 3)
    assert [e.position for e in store.event_read("t", 0, -1, 10)] == [4, 5]
    [part] = store.partition_list("t")
    assert (part.first, part.head, part.count) == (4, 6, 2)


def test_retention_by_age(store: Store) -> None:
    spec = store.topic_ensure(TopicSpec("t", 2, 60.0, None))
    store.event_append("t", [ev(0, 1), ev(1, 2)])
    assert store.event_prune(spec, store.now(), True).removed == 0
    assert store.event_prune(spec, store.now() + 61, True).removed == 2
    assert store.event_read("t", 0, -1, 10) == []
    assert {p.head for p in store.partition_list("t")} == {1}


def test_an_idempotency_key_appends_once(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 2))
    first = store.event_append("t", [NewEvent(0, None, "1", idem_key="order-1")])
    again = store.event_append(
        "t", [NewEvent(0, None, "1", idem_key="order-1"), NewEvent(1, None, "2", idem_key="x")]
    )
    assert [(p.part, p.position, p.duplicate) for p in first] == [(0, 0, False)]
    assert [(p.part, p.position, p.duplicate) for p in again] == [(0, 0, True), (1, 0, False)]
    assert [e.position for e in store.event_read("t", 0, -1, 10)] == [0]


def test_concurrent_publishes_with_one_idempotency_key_append_once(store: Store) -> None:
    store.topic_ensure(TopicSpec("t", 1))
    results: list[bool] = []

    def publish() -> None:
        [p] = store.event_append("t", [NewEvent(0, None, "1", idem_key="same")])
        results.append(p.duplicate)

    threads = [threading.Thread(target=publish) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False, True, True, True, True, True]
    assert len(store.event_read("t", 0, -1, 10)) == 1


def test_kind_backlog_counts_unfinished_jobs(store: Store) -> None:
    from ._helpers import insert

    insert(store, new_job("a"), new_job("a"), new_job("b"), new_job("c"))
    job = claim_one(store)
    store.job_fail_many([Failure(job.id, job.lease_token, "x", retry_in=None)])  # dead: done
    backlog = store.kind_backlog(["a", "b", "zzz"])
    assert sum(backlog.values()) == 2 and "zzz" not in backlog
    assert store.kind_backlog([]) == {}
