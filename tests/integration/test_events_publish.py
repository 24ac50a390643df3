"""Publishing, reading, replay and retention through the public API, on every engine: a publish
commits with its subscriptions' jobs in one transaction (its own, a store transaction, or the
caller's connection, sync and async), and leaves nothing when that transaction rolls back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from offload import ConfigurationError, Event, Offload
from offload.maintenance._events import PRUNED, PRUNED_UNCONSUMED, prune_topics
from offload.store._contract import JobFilter
from tests.store.test_caller_transaction import caller_connection


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = Offload(store_url)
    orders = application.topic("orders", partitions=4, retention=timedelta(days=7))

    @application.subscribe(orders, name="send-receipt", queue="receipts", max_attempts=3)
    def send_receipt(event: Event) -> None:
        return None

    @application.consumer("orders", group="analytics", batch=10)
    def analytics(events: list[Event]) -> None:
        return None

    yield application
    application.close()


def receipts(app: Offload) -> list[dict]:
    jobs = app.store.job_list(JobFilter(kind="send-receipt", limit=1000))
    return [j.args["event"] for j in reversed(jobs)]


def test_publish_appends_and_makes_one_job_per_subscription(app: Offload) -> None:
    orders = app.topics["orders"]
    e = orders.publish({"id": 1}, key="customer-7")
    assert (e.topic, e.key, e.payload, e.offset) == ("orders", "customer-7", {"id": 1}, 0)
    assert e.partition == orders.publish({"id": 2}, key="customer-7").partition  # same key
    assert e.meta["correlation_id"]
    many = orders.publish_many([3, 4, 5], key="customer-7")
    assert [x.offset for x in many] == [2, 3, 4]

    [first, *_] = receipts(app)
    assert first["payload"] == {"id": 1} and first["offset"] == 0
    assert len(receipts(app)) == 5
    job = app.store.job_list(JobFilter(kind="send-receipt", limit=1))[0]
    assert job.queue == "receipts" and job.max_attempts == 3
    assert [x.payload for x in orders.read(e.partition)] == [{"id": 1}, {"id": 2}, 3, 4, 5]
    assert [x.offset for x in orders.read(e.partition, after=2, limit=1)] == [3]


def test_a_publish_in_a_rolled_back_transaction_leaves_no_event_and_no_job(
    app: Offload,
) -> None:
    orders = app.topics["orders"]
    with pytest.raises(RuntimeError), app.transaction() as tx:
        orders.publish({"id": 1}, key="a", connection=tx)
        raise RuntimeError("the order failed")
    with caller_connection(app.store) as conn:
        orders.publish_many([1, 2], key="a", connection=conn)
        conn.rollback()
    assert sum(orders.heads().values()) == 0
    assert all(orders.read(p) == [] for p in range(4))
    assert receipts(app) == []

    with caller_connection(app.store) as conn:
        orders.publish({"id": 2}, key="a", connection=conn)
        conn.commit()
    with app.transaction() as tx:
        orders.publish({"id": 3}, key="a", connection=tx)
    assert [r["payload"] for r in receipts(app)] == [{"id": 2}, {"id": 3}]
    assert [r["offset"] for r in receipts(app)] == [0, 1]  # no offset lost to the rollbacks


def test_publish_async_joins_an_async_app_transaction(app: Offload) -> None:
    orders = app.topics["orders"]

    async def main() -> None:
        e = await orders.publish_async({"id": 1}, key="k")
        assert e.offset == 0
        with pytest.raises(RuntimeError):
            async with app.transaction_async() as tx:
                await orders.publish_async({"id": 2}, key="k", connection=tx)
                raise RuntimeError("rolled back")
        async with app.transaction_async() as tx:
            await orders.publish_many_async([3, 4], key="k", connection=tx)

    asyncio.run(main())
    assert [r["payload"] for r in receipts(app)] == [{"id": 1}, 3, 4]


def test_replay_a_group_from_an_offset_and_from_a_time(app: Offload) -> None:
    orders = app.topics["orders"]
    orders.publish_many(range(3), key="k")
    part = orders.publish(3, key="k").partition
    app.consumers[("orders", "analytics")].ensure_started()
    groups = app.store.group_positions("orders", "analytics")
    assert [p.next_offset for p in groups] == [0, 0, 0, 0]
    app.store.group_set("orders", "analytics", {p: orders.heads()[p] for p in range(4)})
    assert app.store.group_positions("orders", "analytics")[part].lag == 0

    starts = orders.replay("analytics", from_offset=2)
    assert starts == {p: 2 if p == part else 0 for p in range(4)}  # never past a head
    assert app.store.group_positions("orders", "analytics")[part].next_offset == 2

    middle = datetime.now(UTC)
    time.sleep(0.01)
    orders.publish(4, key="k")
    starts = orders.replay("analytics", since=middle)
    assert starts[part] == 4
    assert app.store.group_positions("orders", "analytics")[part].lag == 1

    with pytest.raises(ConfigurationError, match="no consumer group or subscription"):
        orders.replay("nobody", from_offset=0)


def test_replay_a_subscription_makes_new_jobs(app: Offload) -> None:
    orders = app.topics["orders"]
    orders.publish_many([1, 2, 3], key="k")
    assert len(receipts(app)) == 3
    orders.replay("send-receipt", from_offset=1)
    assert [r["offset"] for r in receipts(app)] == [0, 1, 2, 1, 2]


def test_retention_prunes_and_counts_what_no_group_read(store_url: str) -> None:
    app = Offload(store_url)
    try:
        kept = app.topic("kept", partitions=1, max_events=2)
        lossy = app.topic("lossy", partitions=1, max_events=2, keep_unconsumed=False)
        for t in (kept, lossy):

            @app.consumer(t, group="slow")
            def slow(events: list[Event]) -> None:
                return None

        for c in app.consumers.values():
            c.ensure_started()  # both groups at offset 0
        kept.publish_many(range(5))
        lossy.publish_many(range(5))
        assert prune_topics(app) == 3
        assert [e.offset for e in kept.read(0)] == [0, 1, 2, 3, 4]
        assert [e.offset for e in lossy.read(0)] == [3, 4]
        counters = app.store.counters()
        assert (counters[PRUNED], counters[PRUNED_UNCONSUMED]) == (3, 3)
    finally:
        app.close()


def test_declarations_are_checked(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="declared twice"):
        app.topic("orders")
    with pytest.raises(ConfigurationError, match="no topic named"):
        app.subscribe("payments", name="x")(lambda event: None)
    with pytest.raises(ConfigurationError, match="partitions"):
        app.topic("t", partitions=0)
    with pytest.raises(ConfigurationError, match="batch"):
        app.consumer("orders", group="g", batch=0)(lambda events: None)


def test_a_retried_publish_with_an_idempotency_key_appends_and_fans_out_once(
    app: Offload,
) -> None:
    orders = app.topics["orders"]
    first = orders.publish({"id": 1}, idempotency_key="order-1")
    again = orders.publish({"id": 1}, idempotency_key="order-1")
    assert (again.partition, again.offset) == (first.partition, first.offset)
    assert len(receipts(app)) == 1


def test_a_subscription_added_later_starts_at_the_end_or_where_it_says(store_url: str) -> None:
    before = Offload(store_url)
    try:
        orders = before.topic("orders", partitions=2)
        orders.publish_many(range(4), keys=["a", "b", "a", "b"])
    finally:
        before.close()

    later = Offload(store_url)
    try:
        orders = later.topic("orders", partitions=2)
        for name, start in (("from-end", None), ("from-zero", 0), ("from-one", 1)):
            later.subscribe(orders, name=name, start=start)(lambda event: None)
        e = orders.publish(99, key="a")  # records the subscriptions first, then publishes
        last = (e.partition, e.offset)

        def offsets(kind: str) -> list[tuple[int, int]]:
            jobs = later.store.job_list(JobFilter(kind=kind, limit=100))
            return sorted((j.args["event"]["partition"], j.args["event"]["offset"]) for j in jobs)

        heads = orders.heads()
        every = [(p, o) for p in range(2) for o in range(heads[p])]
        assert offsets("from-end") == [last]
        assert offsets("from-zero") == every
        assert offsets("from-one") == [e for e in every if e[1] >= 1]
        recorded = {r.name: r.starts for r in later.store.subscription_list("orders")}
        assert recorded["from-zero"] == {0: 0, 1: 0}
        # recorded once: another process declaring them changes nothing
        again = Offload(store_url)
        try:
            t = again.topic("orders", partitions=2)
            again.subscribe(t, name="from-zero", start=0)(lambda event: None)
            t.ensure()
        finally:
            again.close()
        assert offsets("from-zero") == every
    finally:
        later.close()


@pytest.mark.engine("postgres")
def test_publish_on_a_callers_async_connection(app: Offload) -> None:
    from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

    import psycopg

    parts = urlparse(app.store.url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
    url = urlunparse(parts._replace(query=query))
    orders = app.topics["orders"]

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await orders.publish_many_async([1, 2], key="k", connection=conn)
            await conn.rollback()
            e = await orders.publish_async(3, key="k", connection=conn, idempotency_key="three")
            again = await orders.publish_async(3, key="k", connection=conn, idempotency_key="three")
            assert (e.offset, again.offset) == (0, 0)
            assert receipts(app) == []  # not committed yet
            await conn.commit()

    asyncio.run(main())
    assert [r["payload"] for r in receipts(app)] == [3]
    assert sum(orders.heads().values()) == 1


@pytest.mark.engine("sqlite")
def test_an_async_connection_is_refused_on_sqlite(app: Offload) -> None:
    class AsyncConn:
        async def execute(self, *args: object) -> None:
            return None

    with pytest.raises(ConfigurationError, match="async connection"):
        asyncio.run(app.topics["orders"].publish_async(1, connection=AsyncConn()))


def test_a_topic_with_fewer_partitions_than_the_store_holds_is_refused(store_url: str) -> None:
    first = Offload(store_url)
    try:
        first.topic("t", partitions=4).publish(1)
    finally:
        first.close()
    second = Offload(store_url)
    try:
        t = second.topic("t", partitions=2)
        with pytest.raises(ConfigurationError, match="declare partitions=4"):
            t.publish(1)
        with pytest.raises(ConfigurationError, match="declare partitions=4"):
            with second.transaction() as tx:
                t.publish(1, connection=tx)
        bigger = Offload(store_url)
        try:
            assert bigger.topic("t", partitions=6).publish(1, key="k").partition < 6
            assert len(bigger.topics["t"].heads()) == 6  # partitions were added
        finally:
            bigger.close()
    finally:
        second.close()
