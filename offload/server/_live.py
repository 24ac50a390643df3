"""Live dashboard updates by Server-Sent Events: `GET /ui/events`.

One task per server reads a small fingerprint of the store (the job counts per queue and
state, and the live workers) once per `interval` while at least one browser listens, however
many do. Each stream reads the fingerprint once when it opens (the page was rendered just
before) and sends a `change` event whenever the feed's reading differs from the last one that
stream saw; the page's script then fetches the page again and swaps its content in place
(static/offload.js). A `ready` event opens every stream, so a page knows it is live. Streams
end after `MAX_STREAM` seconds (the browser reconnects at once), so none outlives a server
stopping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from offload.server._context import Server
from offload.store._contract import Store

log = logging.getLogger("offload.server")
MAX_STREAM = 300.0  # seconds one stream lasts; EventSource reconnects by itself
RETRY_MS = 2000  # how soon a browser reconnects after a stream ended or broke


def fingerprint(store: Store) -> tuple[Any, ...]:
    """What changes when the dashboard's pages would show something new."""
    counts = sorted((c.queue, c.state, c.count) for c in store.job_counts())
    workers = sorted((w.id, w.running) for w in store.worker_list(60.0))
    pauses = tuple((p.scope, p.name) for p in store.pause_list())  # a pause from anywhere
    return (tuple(counts), tuple(workers), pauses)


class LiveFeed:
    """Tells listeners when the store's fingerprint changed, with one read per `interval`."""

    def __init__(self, server: Server, interval: float = 1.0) -> None:
        self.server = server
        self.interval = interval
        self.version = 0
        self._fingerprint: tuple[Any, ...] | None = None
        self._listeners = 0
        self._changed: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        changed = self._changed
        assert changed is not None
        while self._listeners > 0:
            try:
                now = await self.server.run(fingerprint, self.server.app.store)
            except Exception as exc:  # noqa: BLE001 - the store failing: pages say so
                log.debug("live updates: reading the store failed (%s)", exc)
            else:
                if now != self._fingerprint:
                    # The first reading too: a stream's own baseline may be older than it (the
                    # jobs changed between the two reads), and each stream sends a change only
                    # when a reading differs from what it saw last.
                    self._fingerprint = now
                    self.version += 1
                    async with changed:
                        changed.notify_all()
            await asyncio.sleep(self.interval)
        self._task = None

    async def changes(self) -> AsyncGenerator[tuple[Any, ...] | None, None]:
        """The feed's reading so far (None before the first) once the listener is counted,
        then each later reading that differs from the one before, as they come."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        changed = self._changed
        self._listeners += 1
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="offload-live-feed")
        seen = self.version
        try:
            yield self._fingerprint
            while True:
                async with changed:
                    while self.version == seen:
                        await changed.wait()
                seen = self.version
                yield self._fingerprint
        finally:
            self._listeners -= 1


async def _stream(feed: LiveFeed) -> AsyncIterator[ServerSentEvent]:
    changes = feed.changes()
    try:
        await anext(changes)  # listening from here on, before the baseline is read
        try:
            seen = await feed.server.run(fingerprint, feed.server.app.store)
        except Exception:  # noqa: BLE001 - the store failing: any later reading differs
            seen = None
        yield ServerSentEvent(data=str(feed.version), event="ready", retry=RETRY_MS)
        async with asyncio.timeout(MAX_STREAM):
            async for reading in changes:
                if reading != seen:
                    seen = reading
                    yield ServerSentEvent(data=str(feed.version), event="change")
    except TimeoutError:
        return
    finally:
        await changes.aclose()


def events_response(request: Request, server: Server) -> Response:
    """The event stream for one browser tab."""
    feed: LiveFeed = request.app.state.live_feed
    return EventSourceResponse(_stream(feed), ping=15, headers={"X-Accel-Buffering": "no"})
