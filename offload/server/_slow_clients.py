"""Slow clients are cut off: uvicorn's HTTP/1.1 protocol with header and body read timeouts.

uvicorn bounds the idle time between requests (`timeout_keep_alive`) and the connections it
serves (`limit_concurrency`), but waits forever for a request that arrives a byte at a time:
a client that sends half a header, or a body that stalls, holds its connection as long as it
likes. `protocol(header_timeout, body_timeout)` is uvicorn's h11 protocol that closes such a
connection: the request line and headers must all arrive within `header_timeout` seconds of
their first byte (or of the connection's opening), and a body may pause for at most
`body_timeout` seconds between two pieces (the application then reads a disconnect).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class SlowClientProtocol(H11Protocol):
    """H11Protocol with a deadline on reading each request's headers and pauses in its body."""

    header_timeout = 10.0
    body_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._phase = ""  # "header", "body" or "" (nothing being read)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("header", self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase != "header" and self.conn.their_state is h11.IDLE:
            self._arm("header", self.header_timeout)  # the first byte of a new request
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        """Set the timer for what the client is sending now."""
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm("body", self.body_timeout)  # each piece of the body restarts the wait
        elif state is h11.IDLE and self._phase == "header" and self._pending():
            pass  # part of a header is in: its deadline stands
        else:
            self._disarm()  # between requests uvicorn's keep-alive timeout applies

    def _pending(self) -> bool:
        """True when part of the next request has arrived but not all its headers."""
        trailing = self.conn.trailing_data[0]
        return bool(trailing) or self.conn.their_state is not h11.IDLE

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._read_timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        self._read_timer = None
        self._phase = ""

    def _expired(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self._phase == "body" and self.flow.read_paused:  # we stopped reading, not they
            self._arm("body", self.body_timeout)
            return
        self.logger.info("closing a connection: its %s did not arrive in time", self._phase)
        self._phase = ""
        self.transport.close()


def protocol(header_timeout: float, body_timeout: float) -> type[SlowClientProtocol]:
    """A protocol class for `uvicorn.run(http=...)` with these timeouts, in seconds."""
    return type(
        "SlowClientProtocol",
        (SlowClientProtocol,),
        {"header_timeout": float(header_timeout), "body_timeout": float(body_timeout)},
    )
