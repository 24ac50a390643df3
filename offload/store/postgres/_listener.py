"""Wake-ups by LISTEN/NOTIFY on a connection of the listener's own, outside the pool."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from offload._errors import StoreError
from offload.store._contract import Listener


class NotifyListener(Listener):
    """Listens on the store's channel; a notification whose payload is one of its queues (any
    queue when it was given none) wakes it. A lost connection is re-opened by `wait`, which
    then answers True: notifications may have been missed meanwhile, so the worker polls."""

    def __init__(self, conninfo: str, listen: str, queues: Sequence[str], where: str) -> None:
        self._conninfo = conninfo
        self._listen = listen
        self._queues = frozenset(queues)
        self._where = where
        self._lock = threading.Lock()
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        try:
            self._conn = self._connect(connect_timeout=10.0)
        except psycopg.Error as exc:
            raise StoreError(f"cannot listen for jobs on PostgreSQL at {where}: {exc}") from exc

    def _connect(self, connect_timeout: float) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=max(1, round(connect_timeout))
        )
        try:
            conn.execute(self._listen)
        except BaseException:
            conn.close()
            raise
        return conn

    def _reconnect(self, deadline: float) -> bool:
        """Re-open the connection before `deadline`; True when it is listening again."""
        delay = 0.05
        while not self._closed:
            left = deadline - time.monotonic()
            try:
                conn = self._connect(connect_timeout=max(left, 1.0))
            except psycopg.Error:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(delay, left))
                delay = min(delay * 2, 1.0)
                continue
            with self._lock:
                if self._closed:
                    conn.close()
                    return False
                self._conn = conn
            return True
        return False

    def _drop(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._closed:
            conn = self._conn
            if conn is None:
                return self._reconnect(deadline)
            left = max(deadline - time.monotonic(), 0.0)
            try:
                for notify in conn.notifies(timeout=left, stop_after=1):
                    if not self._queues or notify.payload in self._queues:
                        return True
            except psycopg.Error:
                if self._closed:
                    return False
                self._drop()
                continue
            if time.monotonic() >= deadline:
                return False
        return False

    def close(self) -> None:
        self._closed = True
        self._drop()
