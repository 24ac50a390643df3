"""Wake-ups by LISTEN/NOTIFY on a connection of the listener's own, outside the pool."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import psycopg

from offload._errors import ConfigurationError, StoreError
from offload.dispatch._limits import Alarm
from offload.store._contract import Listener
from offload.store.postgres._pool import AnswerTimeoutConnection, Pool

log = logging.getLogger("offload.store")
FIRST_RETRY = 0.05  # seconds before the second attempt to re-open a lost connection
LAST_RETRY = 1.0  # the longest pause between attempts: back within a second of the server
QUIET_CHECK = 30.0  # seconds of silence after which the connection is checked (at most)


class NotifyListener(Listener):
    """Listens on the store's channel; a notification whose payload is one of its queues (any
    queue when it was given none) wakes it, and so does the store's `Alarm` (a claim skipped
    jobs for a rate limit whose next token is due).

    A lost connection (a restart, `pg_terminate_backend`, a server silent past the answer
    timeout; a silent connection is checked with a round trip after a quiet spell) is re-opened
    by `wait`, every `LAST_RETRY` seconds at most while the server is away, and `wait` then
    answers True: notifications may have been missed meanwhile, so the worker claims."""

    def __init__(self, pool: Pool, listen: str, queues: Sequence[str], alarm: Alarm) -> None:
        self._pool = pool
        self._listen = listen
        self._queues = frozenset(queues)
        self._alarm = alarm
        self._lock = threading.Lock()
        self._closed = False
        self._conn: AnswerTimeoutConnection | None = None
        self._retry_in = FIRST_RETRY
        self._next_try = 0.0
        self._lost_at: float | None = None
        answer = pool.settings.answer_timeout
        self._check_after = min(answer, QUIET_CHECK) if answer > 0 else QUIET_CHECK
        self._heard = time.monotonic()
        try:
            self._conn = self._connect()
        except ConfigurationError:
            raise
        except StoreError as exc:  # down or out of connections: `wait` tries again
            log.warning("cannot listen for jobs yet (%s); polling until it can", exc)
            self._lost_at = time.monotonic()

    def _connect(self) -> AnswerTimeoutConnection:
        conn = self._pool.connect()
        try:
            conn.execute(self._listen)
        except BaseException:
            conn.close()
            raise
        return conn

    def _reopen(self) -> bool:
        """One attempt to listen again; True when it is listening."""
        try:
            conn = self._connect()
        except (StoreError, psycopg.Error):
            self._next_try = time.monotonic() + self._retry_in
            self._retry_in = min(self._retry_in * 2, LAST_RETRY)
            return False
        with self._lock:
            if self._closed:
                conn.close()
                return False
            self._conn = conn
        if self._lost_at is not None:
            log.info("listening for jobs again after %.1fs", time.monotonic() - self._lost_at)
        self._lost_at = None
        self._retry_in = FIRST_RETRY
        self._heard = time.monotonic()
        return True

    def _drop(self, why: BaseException | None = None) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if why is not None and self._lost_at is None and not self._closed:
            cause = " ".join(str(why).split())
            log.warning("lost the LISTEN connection (%s); polling until it is back", cause)
            self._lost_at = time.monotonic()
            self._next_try = 0.0  # at once: it may be a lone connection that died

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._closed:
            if self._alarm.take():
                return True
            now = time.monotonic()
            until = min(deadline, now + self._alarm.left())
            conn = self._conn
            if conn is None:
                if now >= self._next_try:
                    if self._reopen():
                        return True
                    continue
                time.sleep(max(min(until, self._next_try) - now, 0.0))
                if time.monotonic() >= deadline:
                    return self._alarm.take()
                continue
            if now - self._heard >= self._check_after:
                try:  # a connection that stays silent may be half-open: ask for an answer
                    conn.execute("SELECT 1")
                except psycopg.Error as exc:
                    self._drop(exc)
                    continue
                self._heard = time.monotonic()
            try:
                for notify in conn.notifies(timeout=max(until - now, 0.0), stop_after=1):
                    self._heard = time.monotonic()
                    if not self._queues or notify.payload in self._queues:
                        return True
            except psycopg.Error as exc:
                if self._closed:
                    return False
                self._drop(exc)
                continue
            if time.monotonic() >= deadline:
                return self._alarm.take()
        return False

    def close(self) -> None:
        self._closed = True
        self._drop()
