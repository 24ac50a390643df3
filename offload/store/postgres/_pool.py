"""The PostgreSQL engine's connections: a small pool that connects in the caller's thread.

An operation takes an idle connection, or opens one when fewer than `max_size` are open, in its
own thread and at once: a server that is down or restarting fails the operation within
milliseconds with libpq's reason (`StoreUnavailableError`), and the first operation after the
server answers again connects, with no back-off grown during the outage (psycopg_pool retries
in the background after 1, 2, 4, 8 ... seconds, so a worker took up to half the outage to come
back). The caller decides when to try again. An operation waits, up to `timeout`, only for a
connection of the pool's own: when `max_size` are in use, or when the server refused a new one
for want of slots (`max_connections`) while some of the pool's are in use; a server full before
the pool holds any fails at once.

An idle connection whose socket turned readable was closed or told something by the server (a
restart, `pg_terminate_backend`): it is dropped when taken, never used. Every answer of the
server is awaited for at most `answer_timeout` seconds; past it the connection is shut down (a
half-open connection to a peer that no longer answers, which TCP alone may not notice) and the
operation fails as on any lost connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import socket
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import pq

from offload._errors import StoreBusyError, StoreError
from offload.store.postgres._connect import PoolSettings, connect_error, connect_options

log = logging.getLogger("offload.store")
RV = TypeVar("RV")
MAX_IDLE = 600.0  # seconds an idle connection beyond min_size is kept
MAX_LIFETIME = 3600.0  # seconds a connection is used at most (spread by up to 10 %)


class AnswerTimeoutConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits at most `answer_timeout` seconds (0: for ever) for any
    one answer of the server; then it shuts its socket down, so that the operation fails as on
    a lost connection (`broken`) instead of hanging. Waits given a timeout of their own (e.g.
    for notifications) are not bounded."""

    answer_timeout: float = 0.0
    cut_at: float | None = None  # monotonic time the socket was shut down for silence

    def __del__(self, *args: Any) -> None:
        """Dropped unclosed with a store that was never closed: libpq closes it (in its own
        process only), as for psycopg_pool's connections, without a ResourceWarning."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        limit = self.answer_timeout
        if timeout is None and limit > 0:
            gen = self._bounded(gen, limit)
        return super().wait(gen, interval, timeout)

    def _bounded(self, gen: Generator[Any, Any, RV], limit: float) -> Generator[Any, Any, RV]:
        """`gen`, resumed by psycopg at least every interval; shuts the socket down once
        `limit` seconds pass without `gen` finishing (psycopg then reads end-of-file)."""
        deadline = time.monotonic() + limit
        try:
            state = next(gen)
            while True:
                ready = yield state
                if self.cut_at is None and time.monotonic() > deadline:
                    self.cut(f"no answer from the server within {limit:g}s")
                state = gen.send(ready)
        except StopIteration as done:
            result: RV = done.value
            return result

    def cut(self, why: str) -> None:
        """Shut the socket down (both ways) without closing its descriptor, which psycopg owns."""
        self.cut_at = time.monotonic()
        log.warning("giving up a PostgreSQL connection: %s", why)
        try:
            fd = os.dup(self.pgconn.socket)
        except (OSError, psycopg.Error):
            return
        with socket.socket(fileno=fd) as dup, contextlib.suppress(OSError):
            dup.shutdown(socket.SHUT_RDWR)


def _readable(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection has something to read: the server closed it or sent an
    error (a terminated backend says so before closing); either way it is done."""
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


_FULL = (
    "too many clients already",
    "remaining connection slots are reserved",
    "too many connections for",  # a role's or a database's own connection limit
)


def _server_full(exc: StoreError) -> bool:
    """Whether a connection was refused because the server (or the role) has no slot left."""
    return any(reason in str(exc) for reason in _FULL)


def _close(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(Exception):
        conn.close()


class Pool:
    """Connections of one process to one database (see the module's docstring)."""

    def __init__(self, conninfo: str, settings: PoolSettings, where: str) -> None:
        self.conninfo = conninfo
        self.settings = settings
        self.where = where
        self._kwargs: dict[str, Any] = {"autocommit": True, **connect_options(conninfo)}
        self._cond = threading.Condition()
        self._idle: list[tuple[AnswerTimeoutConnection, float]] = []  # newest last
        self._size = 0  # open connections, idle or in use, and connection attempts under way
        self._closed = False
        self._expires: dict[int, float] = {}  # id(connection) -> when it is retired
        self.connected_once = False  # a connection succeeded: failures are outages from now

    @contextlib.contextmanager
    def connection(self) -> Iterator[AnswerTimeoutConnection]:
        """A connection for one operation, returned to the pool (or dropped) afterwards."""
        conn = self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def connect(self) -> AnswerTimeoutConnection:
        """A new connection with the pool's settings, outside the pool (the caller closes it);
        a failure is a StoreError naming libpq's reason."""
        try:
            conn = AnswerTimeoutConnection.connect(self.conninfo, **self._kwargs)
        except psycopg.Error as exc:
            raise connect_error(exc, self.where, self.connected_once) from exc
        self.connected_once = True
        conn.answer_timeout = self.settings.answer_timeout
        return conn

    def _take(self) -> AnswerTimeoutConnection:
        deadline = time.monotonic() + self.settings.timeout
        full: StoreError | None = None  # the server refused a connection: it is full
        while True:
            conn = self._idle_or_slot(deadline, full)
            if conn is not None:
                return conn
            try:
                conn = self.connect()
            except BaseException as exc:
                with self._cond:
                    self._size -= 1
                    self._cond.notify()
                    # A full server, while connections of ours are in use: wait for one of
                    # them rather than fail (it comes back in moments, unless they are stuck).
                    if isinstance(exc, StoreError) and _server_full(exc) and self._size > 0:
                        full = exc
                        continue
                raise
            self._expires[id(conn)] = time.monotonic() + MAX_LIFETIME * random.uniform(0.9, 1.0)
            return conn

    def _idle_or_slot(
        self, deadline: float, full: StoreError | None
    ) -> AnswerTimeoutConnection | None:
        """An idle connection that is still good, or None with a slot reserved for a new one;
        waits while `max_size` are in use (or, once the server said it is full, while any are),
        until `deadline`."""
        stale: list[AnswerTimeoutConnection] = []
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise StoreError(f"the store on {self.where} is closed")
                    while self._idle:
                        conn, _ = self._idle.pop()
                        if self._usable(conn):
                            return conn
                        self._forget(conn)
                        stale.append(conn)
                    if self._size < (self.settings.max_size if full is None else 1):
                        self._size += 1
                        return None
                    left = deadline - time.monotonic()
                    if left <= 0:
                        if full is not None:
                            raise full
                        raise StoreBusyError(
                            f"all {self.settings.max_size} connections of this process to "
                            f"PostgreSQL at {self.where} stayed in use for "
                            f"{self.settings.timeout:g}s: raise ?pool_max= or lower the load"
                        )
                    self._cond.wait(left)
        finally:
            for conn in stale:
                _close(conn)

    def _usable(self, conn: AnswerTimeoutConnection) -> bool:
        if conn.closed or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False
        if time.monotonic() >= self._expires.get(id(conn), 0.0):
            return False
        return not _readable(conn)

    def _forget(self, conn: AnswerTimeoutConnection) -> None:
        """Count a connection out of the pool (the lock is held)."""
        self._size -= 1
        self._expires.pop(id(conn), None)
        self._cond.notify()

    def _give_back(self, conn: AnswerTimeoutConnection) -> None:
        keep = (
            not conn.closed
            and conn.cut_at is None
            and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        )
        done: list[AnswerTimeoutConnection] = []
        with self._cond:
            now = time.monotonic()
            if keep and not self._closed:
                conn.answer_timeout = self.settings.answer_timeout
                self._idle.append((conn, now))
                self._cond.notify()
            else:
                self._forget(conn)
                done.append(conn)
            while len(self._idle) > self.settings.min_size and self._idle[0][1] < now - MAX_IDLE:
                old, _ = self._idle.pop(0)
                self._forget(old)
                done.append(old)
        for old in done:
            _close(old)

    def discard_idle(self) -> None:
        """Drop every idle connection: one was found lost, so the server may have restarted
        and the others are likely lost too; new ones are opened as needed."""
        with self._cond:
            idle, self._idle = self._idle, []
            for conn, _ in idle:
                self._forget(conn)
        for conn, _ in idle:
            _close(conn)

    def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.discard_idle()
