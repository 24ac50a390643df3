"""The live feed behind the dashboard's Server-Sent Events, without a browser: a stream opens
with `ready`, sends `change` when the jobs change and nothing for a change it already saw,
and the feed reads the store only while someone listens."""

from __future__ import annotations

import asyncio

from offload import Offload
from offload.server import create_app
from offload.server._live import LiveFeed, _stream


def test_a_stream_tells_each_change_once(sqlite_app: Offload) -> None:
    asgi = create_app(sqlite_app)
    feed = LiveFeed(asgi.state.offload, interval=0.02)

    async def scenario() -> list[str]:
        seen: list[str] = []
        sqlite_app.enqueue("add", 1, 1)  # before the stream: part of its baseline
        stream = _stream(feed)
        first = await asyncio.wait_for(anext(stream), 5)
        seen.append(str(first.event))
        assert feed._task is not None  # polling while someone listens
        await asyncio.to_thread(sqlite_app.enqueue, "add", 2, 2)
        second = await asyncio.wait_for(anext(stream), 5)
        seen.append(str(second.event))
        await stream.aclose()
        await asyncio.wait_for(_stopped(feed), 5)
        return seen

    assert asyncio.run(scenario()) == ["ready", "change"]


async def _stopped(feed: LiveFeed) -> None:
    """Until the feed's poller ended (nobody listens any more)."""
    while feed._task is not None:
        await asyncio.sleep(0.01)
