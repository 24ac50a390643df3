"""The dashboard's topics page (no browser): partitions with head offsets, retention, each
group's offset and lag, subscriptions with their backlog, and replay behind a confirmation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from offload import Batch, Event, Offload

from ._helpers import MakeClient, declare


@pytest.fixture
def shop(store_url: str) -> Iterator[Offload]:
    app = declare(Offload(store_url, lease_seconds=30))
    orders = app.topic("orders", partitions=2, retention=timedelta(days=7))

    @app.subscribe(orders, name="send-receipt", queue="emails")
    def send_receipt(event: Event) -> None:
        return None

    @app.consumer(orders, group="analytics")
    def analytics(events: Batch) -> None:
        return None

    orders.publish_many(range(5), key="a")
    app.consumers[("orders", "analytics")].ensure_started()
    yield app
    app.close()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def test_topics_page_shows_partitions_lag_and_backlog(
    shop: Offload, make_client: MakeClient
) -> None:
    c: TestClient = make_client(shop)
    page = c.get("/ui/topics")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="topic-orders"' in html and "168.0 h" in html
    assert 'data-group="analytics">analytics: lag 5<' in html
    assert re.search(r'data-subscription="send-receipt">.*?<td>emails</td><td>5</td>', html, re.S)

    # replay asks first, then resets the group
    shop.store.group_set("orders", "analytics", shop.topics["orders"].heads())
    form = {"csrf": _csrf(html), "group": "analytics", "from_offset": "2"}
    confirm = c.post("/ui/topics/orders/replay", data=form)
    assert confirm.status_code == 200 and "Confirm replay" in confirm.text
    assert all(p.lag == 0 for p in shop.store.group_positions("orders"))  # nothing yet
    done = c.post(
        "/ui/topics/orders/replay", data={**form, "confirm": "yes"}, follow_redirects=False
    )
    assert done.status_code == 303
    lags = sorted(p.lag for p in shop.store.group_positions("orders"))
    assert lags == [0, 3]

    both = c.post("/ui/topics/orders/replay", data={**form, "since": "2026-01-01T00:00Z"})
    assert both.status_code == 400


def test_metrics_show_published_lag_and_backlog(shop: Offload, make_client: MakeClient) -> None:
    text = make_client(shop).get("/metrics").text
    part = shop.topics["orders"].read(0) and "0" or "1"  # the partition key "a" went to
    assert f'offload_events_published_total{{partition="{part}",topic="orders"}} 5.0' in text
    assert (
        f'offload_consumer_lag{{group="analytics",partition="{part}",topic="orders"}} 5.0' in text
    )
    assert 'offload_subscription_backlog{subscription="send-receipt",topic="orders"} 5.0' in text
