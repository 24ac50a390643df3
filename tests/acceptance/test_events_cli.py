"""`offload events list | read | replay` on a store with a topic, a consumer group and a
subscription: replay resets the group from an offset or a time, and gives the subscription
new jobs (with --app, which declares it)."""

from __future__ import annotations

import json

from offload import Offload
from offload.events import partition_for
from offload.store._contract import JobFilter

from ._helpers import CLI, opened

APP = "eventsapp:app"


def seed(url: str) -> None:
    from tests.acceptance.eventsapp import analytics, orders

    app = Offload(url)
    try:
        topic = app.topic("orders", partitions=orders.partitions)
        app.subscribe(topic, name="send-receipt")(lambda event: None)
        app.consumer(topic, group="analytics")(analytics.handler)
        topic.publish_many(range(6), keys=["a", "b", "a", "b", "a", "b"])
        app.consumers[("orders", "analytics")].ensure_started()
        app.store.group_set("orders", "analytics", topic.heads())
    finally:
        app.close()


def test_list_read_and_replay(cli: CLI, fresh_url: str) -> None:
    seed(fresh_url)
    listed = cli("events", "list", "--url", fresh_url, "--json").json()
    assert listed[0]["topic"] == "orders" and listed[0]["events"] == 6
    assert listed[0]["groups"] == {"analytics": 0}

    part = str(partition_for("a", 2))
    lines = cli("events", "read", "orders", "-p", part, "--url", fresh_url).out.splitlines()
    offsets = [json.loads(line)["offset"] for line in lines]
    assert offsets == list(range(len(offsets))) and offsets

    cli(
        "events",
        "replay",
        "orders",
        "--group",
        "analytics",
        "--from-offset",
        "1",
        "--url",
        fresh_url,
    )
    with opened(fresh_url) as store:
        heads = [p.head for p in store.partition_list("orders")]
        got = [p.next_offset for p in store.group_positions("orders", "analytics")]
    assert got == [min(1, h) for h in heads]  # never past a partition's head
    cli("events", "replay", "orders", "--group", "analytics", "--since", "1h", "--url", fresh_url)
    with opened(fresh_url) as store:
        assert [p.next_offset for p in store.group_positions("orders", "analytics")] == [0, 0]

    args = ("events", "replay", "orders", "--group", "send-receipt", "--from-offset", "0")
    cli(*args, "--app", APP, "--url", fresh_url)
    with opened(fresh_url) as store:
        receipts = store.job_list(JobFilter(kind="send-receipt", limit=100))
    assert len(receipts) == 12  # 6 at publish, 6 replayed

    result = cli(
        "events",
        "replay",
        "orders",
        "--group",
        "nobody",
        "--from-offset",
        "0",
        "--url",
        fresh_url,
        code=2,
    )
    assert "no consumer group or subscription named 'nobody'" in result.err
    cli("events", "replay", "orders", "--group", "analytics", "--url", fresh_url, code=2)
    cli("events", "read", "payments", "-p", "0", "--url", fresh_url, code=1)
