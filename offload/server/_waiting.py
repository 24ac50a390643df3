"""Waiting without holding threads: wake-ups for long polls, bounds on waiting requests, and
reads of the store shared by every request for a short while.

One thread per server process listens on the store (`store.listener`), and only while some
request waits; each wake-up sets the asyncio events of the waiting requests, which then claim
again. A waiting request holds no thread, only a slot. Result waits and worker long polls have
slots of their own (`max_result_waits`, `max_worker_polls`): past its bound a request is
answered 503, so that a flood of one cannot exhaust the server, nor starve the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

from offload.server._problems import Problem
from offload.store._contract import Listener

log = logging.getLogger("offload.server")
T = TypeVar("T")


class Waker:
    """Turns the store's listener into asyncio wake-ups for any number of waiters."""

    def __init__(self, open_listener: Callable[[], Listener]) -> None:
        self._open = open_listener
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._wanted = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def arm(self) -> asyncio.Event:
        """An event set at the next wake-up; call before looking, so none is missed."""
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="offload-server-waker", daemon=True
                )
                self._thread.start()
        self._wanted.set()
        return event

    def disarm(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = {w for w in self._waiters if w[1] is not event}

    def close(self) -> None:
        self._closed.set()
        self._wanted.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5.0)

    def _fire(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(event.set)

    def _run(self) -> None:
        listener: Listener | None = None
        try:
            while not self._closed.is_set():
                with self._lock:
                    idle = not self._waiters
                    if idle:
                        self._wanted.clear()
                if idle:
                    self._wanted.wait(1.0)
                    continue
                if listener is None:
                    try:
                        listener = self._open()
                    except Exception as exc:
                        log.warning("cannot listen for jobs (%s); waiters poll instead", exc)
                        self._closed.wait(1.0)
                        continue
                try:
                    woke = listener.wait(0.25)
                except Exception:
                    log.debug("listener failed; re-opening it", exc_info=True)
                    with contextlib.suppress(Exception):
                        listener.close()
                    listener = None
                    continue
                if woke:
                    self._fire()
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    listener.close()


class Slots:
    """Counts waiting requests of one sort (`what`) and refuses more than `limit` with 503
    Overloaded."""

    def __init__(self, limit: int, what: str = "requests") -> None:
        self.limit = limit
        self.what = what
        self.used = 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        if self.used >= self.limit:
            raise Problem(
                "overloaded",
                f"{self.used} {self.what} are already waiting (the limit is {self.limit})",
                headers={"Retry-After": "1"},
            )
        self.used += 1
        try:
            yield
        finally:
            self.used -= 1


class TtlCache:
    """Values kept for `seconds`, computed once however many threads ask at the same time: the
    first caller of a key computes it while the others wait for its value. So a page or scrape
    that many load at once reads the store at most once per period, whatever the load."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._keys: dict[Hashable, threading.Lock] = {}
        self._values: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            key_lock = self._keys.setdefault(key, threading.Lock())
        with key_lock:
            kept = self._values.get(key)
            if kept is not None and time.monotonic() - kept[0] < self.seconds:
                value: T = kept[1]
                return value
            value = compute()
            self._values[key] = (time.monotonic(), value)
            return value
