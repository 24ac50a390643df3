"""A consumer group's partition job, run here on claimed jobs (no worker process): batches in
offset order, the offset committed after each, a failing batch delivered again whole, the
partition handed to one successor, an async handler, and a new group starting at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offload import Batch, Offload
from offload.events import Consumer, SliceEnd
from offload.store._contract import ClaimedJob, ClaimParams, Failure


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = Offload(store_url)
    application.topic("orders", partitions=1)
    yield application
    application.close()


def claim(app: Offload, consumer: Consumer) -> ClaimedJob:
    [job] = [
        j
        for j in app.store.job_claim(ClaimParams(["default"], 10, "test", 60.0))
        if j.kind == consumer.kind
    ]
    return job


def run(consumer: Consumer, job: ClaimedJob) -> SliceEnd:
    return consumer.run_partition(0, job.id, job.lease_token, lambda: False)


def test_batches_in_order_a_failure_redelivers_and_the_partition_is_handed_on(
    app: Offload,
) -> None:
    seen: list[list[int]] = []
    fail = {"once": True}

    @app.consumer("orders", group="g", batch=3, idle=0, poll=0)
    def handle(events: Batch) -> None:
        seen.append([e.offset for e in events])
        if events[0].offset == 3 and fail.pop("once", False):
            raise RuntimeError("the downstream is down")

    consumer = app.consumers[("orders", "g")]
    app.topics["orders"].publish_many(range(7))
    assert consumer.ensure_started() == 1
    assert consumer.ensure_started() == 0  # held already
    job = claim(app, consumer)
    with pytest.raises(RuntimeError):
        run(consumer, job)
    assert seen == [[0, 1, 2], [3, 4, 5]]
    assert app.store.group_positions("orders", "g")[0].next_offset == 3  # 3..5 not committed
    app.store.job_fail_many([Failure(job.id, job.lease_token, "x", retry_in=0.0)])
    app.store.job_promote_due()
    again = claim(app, consumer)
    assert again.id == job.id  # the same job holds the partition: its retry
    end = run(consumer, again)
    assert seen[2:] == [[3, 4, 5], [6]]  # the failed batch again, whole, then on
    [pos] = app.store.group_positions("orders", "g")
    assert pos.next_offset == 7 and pos.lag == 0
    assert end.successor == pos.job_id and end.handled == 4
    # the old job holds nothing now: run again, it does nothing and hands on nothing
    assert run(consumer, again).successor is None


def test_an_async_handler_and_a_group_starting_at_the_end(app: Offload) -> None:
    orders = app.topics["orders"]
    orders.publish_many([1, 2])
    got: list[int] = []

    @app.consumer("orders", group="late", start="latest", idle=0, poll=0)
    async def handle(events: Batch) -> None:
        got.extend(e.payload for e in events)

    consumer = app.consumers[("orders", "late")]
    consumer.ensure_started()
    orders.publish(3)
    run(consumer, claim(app, consumer))
    assert got == [3]
