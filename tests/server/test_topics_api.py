"""Topics over HTTP, on every engine: publish (idempotent with a key, making the server's
subscriptions' jobs), read by offset, a consumer group fetched and committed by a client in
another language (one holder per partition, a stale lease commits nothing), and replay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Event, Offload
from offload.store._contract import JobFilter

from ._helpers import MakeClient, declare


@pytest.fixture
def topics_app(store_url: str) -> Iterator[Offload]:
    application = declare(Offload(store_url, lease_seconds=30))
    orders = application.topic("orders", partitions=2)

    @application.subscribe(orders, name="send-receipt")
    def send_receipt(event: Event) -> None:
        return None

    yield application
    application.close()


@pytest.fixture
def http(topics_app: Offload, make_client: MakeClient) -> TestClient:
    return make_client(topics_app)


def publish(http: TestClient, payload: Any, key: str | None = None, **headers: str) -> Any:
    r = http.post("/topics/orders/events", json={"payload": payload, "key": key}, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r


def test_publish_and_read(http: TestClient, topics_app: Offload) -> None:
    first = publish(http, {"id": 1}, "customer-1")
    assert first.status_code == 201
    e = first.json()
    assert (e["topic"], e["offset"], e["key"], e["payload"]) == (
        "orders",
        0,
        "customer-1",
        {"id": 1},
    )
    again = publish(http, {"id": 1}, "customer-1", **{"Idempotency-Key": "order-1"})
    assert again.status_code == 201 and again.json()["offset"] == 1
    replayed = publish(http, {"id": 1}, "customer-1", **{"Idempotency-Key": "order-1"})
    assert replayed.status_code == 200 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["offset"] == 1
    receipts = topics_app.store.job_list(JobFilter(kind="send-receipt"))
    assert len(receipts) == 2  # the replayed publish made none

    page = http.get(f"/topics/orders/partitions/{e['partition']}/events", params={"after": 0})
    assert [x["offset"] for x in page.json()["events"]] == [1]
    listed = http.get("/topics").json()["topics"]
    assert listed[0]["name"] == "orders" and sum(listed[0]["heads"]) == 2
    assert listed[0]["subscriptions"] == ["send-receipt"]

    assert http.post("/topics/nope/events", json={"payload": 1}).status_code == 404
    assert http.get("/topics/orders/partitions/7/events").status_code == 404
    assert http.post("/topics/orders/events", json={"key": "x"}).status_code == 422


def test_a_remote_group_reads_every_event_once_in_order(http: TestClient) -> None:
    for i in range(30):
        publish(http, i, f"k{i % 5}")
    seen: dict[int, list[int]] = {}
    for _ in range(100):
        r = http.post("/topics/orders/groups/js/fetch", json={"worker": "node-1", "max": 7})
        if r.status_code == 204:
            break
        batch = r.json()
        offsets = [e["offset"] for e in batch["events"]]
        assert offsets[0] == batch["next_offset"]
        seen.setdefault(batch["partition"], []).extend(offsets)
        done = http.post(
            "/topics/orders/groups/js/commit",
            json={
                "partition": batch["partition"],
                "job_id": batch["job_id"],
                "lease_token": batch["lease_token"],
                "expect": batch["next_offset"],
                "next_offset": offsets[-1] + 1,
            },
        )
        assert done.status_code == 200, done.text
        # the lease was handed on with the commit: committing again changes nothing
        stale = http.post(
            "/topics/orders/groups/js/commit",
            json={
                "partition": batch["partition"],
                "job_id": batch["job_id"],
                "lease_token": batch["lease_token"],
                "expect": offsets[-1] + 1,
                "next_offset": offsets[-1] + 1,
            },
        )
        assert stale.status_code == 409
    assert sum(len(v) for v in seen.values()) == 30
    for offsets in seen.values():
        assert offsets == list(range(len(offsets)))


def test_a_partition_is_held_by_one_client_at_a_time(http: TestClient) -> None:
    publish(http, 1, "a")
    first = http.post("/topics/orders/groups/js/fetch", json={"worker": "w1"})
    assert first.status_code == 200
    # the only partition with events is held: another client gets nothing
    second = http.post("/topics/orders/groups/js/fetch", json={"worker": "w2"})
    assert second.status_code == 204


def test_replay_over_http(http: TestClient, topics_app: Offload) -> None:
    publish(http, 1, "a")
    publish(http, 2, "a")
    r = http.post("/topics/orders/replay", json={"group": "send-receipt", "from_offset": 0})
    assert r.status_code == 200, r.text
    assert len(topics_app.store.job_list(JobFilter(kind="send-receipt"))) == 4
    bad = http.post("/topics/orders/replay", json={"group": "nobody", "from_offset": 0})
    assert bad.status_code == 422
    both = http.post(
        "/topics/orders/replay",
        json={"group": "send-receipt", "from_offset": 0, "since": "2026-01-01T00:00:00Z"},
    )
    assert both.status_code == 422


def test_a_topic_streams_its_events_and_resumes_after_the_last_id(
    topics_app: Offload, make_client: MakeClient
) -> None:
    import asyncio

    from offload.server import create_app
    from offload.server._topics_api import stream_cursor, topic_stream

    orders = topics_app.topics["orders"]
    orders.publish_many([1, 2], key="a")
    part = orders.read(0) and 0 or 1
    asgi = create_app(topics_app)

    async def scenario() -> tuple[list[str], str]:
        stream = topic_stream(asgi.state.offload, orders, {0: -1, 1: -1}, poll=0.01)
        assert (await anext(stream)).event == "ready"
        got = [(await asyncio.wait_for(anext(stream), 5)) for _ in range(2)]
        await asyncio.to_thread(orders.publish, 3, "a")
        got.append(await asyncio.wait_for(anext(stream), 5))
        await stream.aclose()
        return [str(e.data) for e in got], str(got[-1].id)

    data, last_id = asyncio.run(scenario())
    assert [json.loads(d)["payload"] for d in data] == [1, 2, 3]
    assert stream_cursor(last_id, 2) == {part: 2, 1 - part: -1}
    assert stream_cursor("garbage", 2) is None

    http = make_client(topics_app)
    assert http.get("/topics/nope/stream").status_code == 404
    assert http.get("/topics/orders/stream", params={"partition": 5}).status_code == 404
