"""Runs claimed jobs: sync code on threads, async code on one event-loop thread.

Each run ends in an `Outcome` handed to a callback; the worker turns outcomes into batched
acknowledgements. A job past its timeout is reported as a timed-out failure at once: async
jobs are cancelled, and a sync job's thread is told to stop (an exception raised into it at
its next Python instruction) and replaced, so the worker keeps its full capacity either way.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from offload._errors import JobTimeoutError
from offload._payload import check_json
from offload.dispatch._adaptive import Throttled
from offload.store._contract import ClaimedJob

if TYPE_CHECKING:
    from offload._app import Offload

log = logging.getLogger("offload.worker")
_TRACEBACK_LINES = 40


@dataclass(slots=True)
class Outcome:
    """How one run ended."""

    job: ClaimedJob
    ok: bool
    result: Any = None
    error: str = ""
    traceback: str = ""
    timed_out: bool = False
    duration: float = 0.0
    throttled: bool = False  # the downstream pushed back (offload.Throttled or a named type)
    retry_after: float | None = None  # from offload.Throttled(retry_after=...)


@dataclass(slots=True)
class _Running:
    job: ClaimedJob
    started: float
    thread: threading.Thread | None = None
    future: Any = None
    reported: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _format_error(exc: BaseException) -> tuple[str, str]:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(lines)
    head = "\n".join(text.splitlines()[-_TRACEBACK_LINES:])
    return f"{type(exc).__name__}: {exc}", head


class Executor:
    """A fixed number of slots running jobs of one application."""

    def __init__(self, app: Offload, concurrency: int, on_done: Callable[[Outcome], None]) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.app = app
        self.concurrency = concurrency
        self.on_done = on_done
        self._tasks: queue.SimpleQueue[_Running | None] = queue.SimpleQueue()
        self._running: dict[int, _Running] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._closed = False

    # --- capacity ---------------------------------------------------------------------
    def free_slots(self) -> int:
        with self._lock:
            return self.concurrency - len(self._running)

    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def running_jobs(self) -> list[ClaimedJob]:
        with self._lock:
            return [r.job for r in self._running.values()]

    # --- running ----------------------------------------------------------------------
    def submit(self, job: ClaimedJob) -> None:
        """Start a claimed job; the caller checked `free_slots()` first."""
        entry = _Running(job, time.monotonic())
        with self._lock:
            self._running[job.id] = entry
        job_type = self.app.jobs.get(job.kind)
        if job_type is not None and job_type.is_async:
            loop = self._event_loop()
            entry.future = asyncio.run_coroutine_threadsafe(self._run_async(entry), loop)
        else:
            self._ensure_threads()
            self._tasks.put(entry)

    def _ensure_threads(self) -> None:
        alive = [t for t in self._threads if t.is_alive()]
        self._threads = alive
        while len(self._threads) < self.concurrency:
            t = threading.Thread(target=self._thread_main, name="offload-job", daemon=True)
            t.start()
            self._threads.append(t)

    def _thread_main(self) -> None:
        try:
            self._serve()
        except JobTimeoutError:
            pass  # a retired thread's stop request arrived after its job had returned

    def _serve(self) -> None:
        me = threading.current_thread()
        while True:
            entry = self._tasks.get()
            if entry is None:
                return
            entry.thread = me
            entry.started = time.monotonic()
            try:
                outcome = self._run_sync(entry)
            except JobTimeoutError:
                outcome = None  # already reported by the watchdog
            if outcome is not None:
                self._finish(entry, outcome)
            if getattr(me, "retired", False):
                return

    def _run_sync(self, entry: _Running) -> Outcome:
        job = entry.job
        job_type = self.app.jobs.get(job.kind)
        if job_type is None:
            return self._unknown(job)
        try:
            fn = job_type.function()
            args, kwargs = job_type.signature.call_args(job.args)
            result = fn(*args, **kwargs)
            return self._success(entry, result)
        except JobTimeoutError:
            raise
        except Exception as exc:
            return self._failure(job, exc)

    async def _run_async(self, entry: _Running) -> None:
        job = entry.job
        job_type = self.app.jobs[job.kind]
        entry.started = time.monotonic()
        try:
            fn = job_type.function()
            args, kwargs = job_type.signature.call_args(job.args)
            result = await asyncio.wait_for(fn(*args, **kwargs), job.timeout)
            outcome = self._success(entry, result)
        except TimeoutError:
            outcome = self._timeout(entry)
        except Exception as exc:
            outcome = self._failure(job, exc)
        self._finish(entry, outcome)

    def _failure(self, job: ClaimedJob, exc: Exception) -> Outcome:
        error, tb = _format_error(exc)
        job_type = self.app.jobs.get(job.kind)
        limit = job_type.options_.limit if job_type is not None else None
        adaptive = limit.adaptive if limit is not None else None
        throttled = isinstance(exc, Throttled) or (adaptive is not None and adaptive.throttles(exc))
        retry_after = exc.retry_after if isinstance(exc, Throttled) else None
        return Outcome(
            job, False, error=error, traceback=tb, throttled=throttled, retry_after=retry_after
        )

    def _success(self, entry: _Running, result: Any) -> Outcome:
        try:
            value = check_json(result, f"the result of {entry.job.kind}()")
        except Exception as exc:
            error, tb = _format_error(exc)
            return Outcome(entry.job, False, error=error, traceback=tb)
        return Outcome(entry.job, True, result=value)

    def _unknown(self, job: ClaimedJob) -> Outcome:
        return Outcome(
            job,
            False,
            error=f"UnknownJobError: this worker has no job type named {job.kind!r} "
            "(deploy the code that declares it, or cancel the job)",
        )

    def _timeout(self, entry: _Running) -> Outcome:
        return Outcome(
            entry.job,
            False,
            error=f"JobTimeoutError: ran longer than its timeout of {entry.job.timeout}s",
            timed_out=True,
        )

    def _finish(self, entry: _Running, outcome: Outcome) -> bool:
        """Report an outcome once; False when another outcome was reported first."""
        with entry.lock:
            if entry.reported:
                return False
            entry.reported = True
        outcome.duration = time.monotonic() - entry.started
        with self._lock:
            self._running.pop(entry.job.id, None)
        self.on_done(outcome)
        return True

    # --- timeouts ---------------------------------------------------------------------
    def check_timeouts(self) -> float | None:
        """Report jobs past their timeout; return seconds until the next one could expire."""
        now = time.monotonic()
        soonest: float | None = None
        with self._lock:
            entries = list(self._running.values())
        for entry in entries:
            if entry.job.timeout is None or entry.future is not None:
                continue
            left = entry.started + entry.job.timeout - now
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
                continue
            thread = entry.thread
            if not self._finish(entry, self._timeout(entry)):
                continue  # the job finished just now: its thread must not be stopped
            if thread is not None:
                thread.retired = True  # type: ignore[attr-defined]
                _raise_in_thread(thread, JobTimeoutError)
                self._threads = [t for t in self._threads if t is not thread]
                self._ensure_threads()
        return soonest

    # --- the async loop and shutdown --------------------------------------------------
    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._loop_thread = threading.Thread(target=main, name="offload-async", daemon=True)
            self._loop_thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    def take_unstarted(self) -> list[ClaimedJob]:
        """Remove jobs that were handed over but not started yet (for release at shutdown)."""
        taken = []
        while True:
            try:
                entry = self._tasks.get_nowait()
            except queue.Empty:
                break
            if entry is None:
                continue
            with entry.lock:
                entry.reported = True
            with self._lock:
                self._running.pop(entry.job.id, None)
            taken.append(entry.job)
        return taken

    def abandon_running(self) -> list[ClaimedJob]:
        """Stop reporting for every running job (shutdown past the grace period)."""
        abandoned = []
        with self._lock:
            entries = list(self._running.values())
            self._running.clear()
        for entry in entries:
            with entry.lock:
                if entry.reported:
                    continue
                entry.reported = True
            if entry.future is not None:
                entry.future.cancel()
            abandoned.append(entry.job)
        return abandoned

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._tasks.put(None)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(5.0)
            if not self._loop.is_running():
                self._loop.close()


def _raise_in_thread(thread: threading.Thread, exc: type[BaseException]) -> None:
    """Ask a thread to raise `exc` at its next Python instruction (best effort)."""
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))
