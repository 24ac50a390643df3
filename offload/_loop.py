"""The one lifecycle every background loop shares: start, tick every interval, stop."""

from __future__ import annotations

import abc
import logging
import threading

log = logging.getLogger("offload")


class BackgroundLoop(abc.ABC):
    """Runs `tick()` in a daemon thread every `interval` seconds until stopped.

    `start` and `stop` are idempotent; an exception in `tick` is logged and the loop goes on,
    so one failing duty never takes its process down.
    """

    name = "loop"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"offload-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.stopped()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("%s failed; trying again in %.1fs", self.name, self.interval)
            self._stop.wait(self.interval)

    @abc.abstractmethod
    def tick(self) -> None:
        """One round of the loop's work."""

    def stopped(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Called once the loop has stopped; release resources here."""
