"""Run time seen by a worker: jobs that ran past their `max_run_time` without being able to stop,
and async job code that blocked the event loop (docs/run-time.md).

An iteration job (a generator) is cut into slices of at most `max_run_time`; any other job cannot
be interrupted, so one that runs longer is reported instead, once per run: at the heartbeat while
it still runs (`check`), or at its end (`ran`). Its kind's overruns, worst and summed durations
are added up here in memory, per kind, and written to the store's run-time reports with the
worker's heartbeat (`flush`), never once per job.

The loop watchdog is a thread that asks the worker's event loop to run a callback every
`interval`; when the callback has not run after `threshold` seconds, something holds the loop
(a `time.sleep` inside `async def`): it looks at the loop thread's stack for the job function
running there, and once the loop runs again logs a WARNING naming that job type and how long
the loop was blocked, and reports it for that kind like an overrun.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from offload.store._runtime import RunTimeReport

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.store._contract import ClaimedJob, Store

log = logging.getLogger("offload.worker")

BLOCK_THRESHOLD = 0.5  # seconds without a tick of the event loop that count as blocked
WATCH_INTERVAL = 0.1  # how often the watchdog asks the loop for a tick
_Kind = tuple[float | None, str | None, bool]  # (max_run_time, owner, interruptible)
_NO_LIMIT: _Kind = (None, None, False)  # a kind this worker does not know


@dataclass(slots=True)
class _Seen:
    """What one kind did since the last flush (times are time.monotonic())."""

    queue: str
    owner: str | None
    max_run_time: float | None
    overruns: int = 0
    overrun_seconds: float = 0.0
    worst_seconds: float = 0.0
    last_overrun: float | None = None
    blocks: int = 0
    blocked_seconds: float = 0.0
    worst_block: float = 0.0
    last_block: float | None = None


def interruptible(target: Any) -> bool:
    """Whether a job type's code can stop at a yield: a generator (sync or async), or a class
    whose `run` is one. Such jobs run in slices instead of being reported."""
    fn = getattr(target, "run", target) if inspect.isclass(target) else target
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)


class RunTimeMonitor:
    """Overruns and loop blocks of one worker's jobs, by kind, until the next flush."""

    def __init__(self, app: Offload) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}
        # Runs counted as overruns while still running: (job id, lease token) -> seconds added.
        self._counted: dict[tuple[int, int], float] = {}
        self._kinds: dict[str, _Kind] = {}
        self._watchdog: LoopWatchdog | None = None

    def _kind(self, kind: str) -> _Kind:
        """(max_run_time, owner, interruptible) of a kind, worked out once per kind."""
        known = self._kinds.get(kind)
        if known is None:
            job_type = self.app.jobs.get(kind)
            if job_type is None:
                known = _NO_LIMIT
            else:
                known = (
                    job_type.max_run_time,
                    job_type.options_.owner,
                    interruptible(job_type.target),
                )
            self._kinds[kind] = known
        return known

    def ran(self, job: ClaimedJob, duration: float) -> None:
        """A run of `job` ended after `duration` seconds: an overrun when its kind cannot be
        interrupted and has a max_run_time it went past. Cheap when it did not."""
        limit, owner, sliced = self._kind(job.kind)
        if limit is None or sliced:
            return
        if self._counted:
            with self._lock:
                counted = self._counted.pop((job.id, job.lease_token), None)
                if counted is not None:  # counted while it ran: now its whole duration
                    seen = self._entry(job.kind, job.queue, owner, limit)
                    seen.overrun_seconds += max(duration - counted, 0.0)
                    seen.worst_seconds = max(seen.worst_seconds, duration)
                    return
        if duration > limit:
            self._overrun(job, duration, limit, owner, "ran")

    def check(self, running: list[tuple[ClaimedJob, float]]) -> None:
        """Count the jobs still running past their max_run_time (with the heartbeat), once
        per run: a job that runs for hours is reported while it runs, not only at its end."""
        now = time.monotonic()
        held = set()
        for job, began in running:
            limit, owner, sliced = self._kind(job.kind)
            if limit is None or sliced:
                continue
            key = (job.id, job.lease_token)
            held.add(key)
            elapsed = now - began
            if elapsed > limit and key not in self._counted:
                with self._lock:
                    self._counted[key] = elapsed
                self._overrun(job, elapsed, limit, owner, "has run")
        with self._lock:  # runs that ended without `ran` (abandoned at shutdown)
            for key in [k for k in self._counted if k not in held]:
                del self._counted[key]

    def _overrun(
        self, job: ClaimedJob, seconds: float, limit: float, owner: str | None, verb: str
    ) -> None:
        with self._lock:
            seen = self._entry(job.kind, job.queue, owner, limit)
            first = seen.overruns == 0
            seen.overruns += 1
            seen.overrun_seconds += seconds
            seen.worst_seconds = max(seen.worst_seconds, seconds)
            seen.last_overrun = time.monotonic()
        if first:  # once per kind and flush: a kind that keeps overrunning does not flood
            log.warning(
                "job %s (%s) %s %.2fs, past its max_run_time of %gs, and cannot be interrupted "
                "(not an iteration job)%s; reported, and its new jobs order after the others "
                "of queue %r while it keeps doing so",
                job.id,
                job.kind,
                verb,
                seconds,
                limit,
                f"; owner: {owner}" if owner else "",
                job.queue,
            )

    def blocked(self, jobs: list[ClaimedJob], seconds: float) -> None:
        """The event loop was blocked for `seconds` while `jobs` (the job blocking it, or every
        async job running then when it could not be told) were running."""
        kinds = sorted({j.kind for j in jobs})
        log.warning(
            "the event loop was blocked for %.2fs by async job code that does not await "
            "(e.g. time.sleep in async def) in %s; every async job of this worker waited",
            seconds,
            ", ".join(kinds) if kinds else "no job (worker code)",
        )
        now = time.monotonic()
        with self._lock:
            for job in {j.kind: j for j in jobs}.values():
                limit, owner, _ = self._kind(job.kind)
                seen = self._entry(job.kind, job.queue, owner, limit)
                seen.blocks += 1
                seen.blocked_seconds += seconds
                seen.worst_block = max(seen.worst_block, seconds)
                seen.last_block = now

    def _entry(self, kind: str, queue: str, owner: str | None, limit: float | None) -> _Seen:
        seen = self._seen.get(kind)
        if seen is None:
            seen = self._seen[kind] = _Seen(queue, owner, limit)
        return seen

    def take(self) -> list[RunTimeReport]:
        """The reports so far, leaving the monitor empty."""
        with self._lock:
            seen, self._seen = self._seen, {}
        now = time.monotonic()
        return [
            RunTimeReport(
                kind=kind,
                queue=s.queue,
                owner=s.owner,
                max_run_time=s.max_run_time,
                overruns=s.overruns,
                overrun_seconds=s.overrun_seconds,
                worst_seconds=s.worst_seconds,
                overrun_age=None if s.last_overrun is None else now - s.last_overrun,
                blocks=s.blocks,
                blocked_seconds=s.blocked_seconds,
                worst_block=s.worst_block,
                block_age=None if s.last_block is None else now - s.last_block,
            )
            for kind, s in sorted(seen.items())
        ]

    def flush(self, store: Store) -> None:
        """Write what was seen to the store's run-time reports (with the heartbeat); when that
        fails, it is kept for the next flush."""
        reports = self.take()
        if not reports:
            return
        try:
            store.kind_runtime_add(reports)
        except Exception:
            with self._lock:  # give back: the next flush adds them up again
                for r in reports:
                    s = self._entry(r.kind, r.queue, r.owner, r.max_run_time)
                    s.overruns += r.overruns
                    s.overrun_seconds += r.overrun_seconds
                    s.worst_seconds = max(s.worst_seconds, r.worst_seconds)
                    if r.overrun_age is not None and s.last_overrun is None:
                        s.last_overrun = time.monotonic() - r.overrun_age
                    s.blocks += r.blocks
                    s.blocked_seconds += r.blocked_seconds
                    s.worst_block = max(s.worst_block, r.worst_block)
                    if r.block_age is not None and s.last_block is None:
                        s.last_block = time.monotonic() - r.block_age
            raise

    def watch(
        self, loop: asyncio.AbstractEventLoop, running: Callable[[], list[ClaimedJob]]
    ) -> None:
        """Start the watchdog of the worker's event loop; `running` gives the jobs held."""
        if self._watchdog is None:
            async_kinds = {k for k, t in self.app.jobs.items() if t.is_async}
            self._watchdog = LoopWatchdog(loop, self, running, async_kinds, self._codes())
            self._watchdog.start()

    def _codes(self) -> dict[CodeType, str]:
        """The code objects of the app's async job functions, to find on a blocked stack."""
        codes: dict[CodeType, str] = {}
        for kind, job_type in self.app.jobs.items():
            target = job_type.target
            fn = getattr(target, "run", None) if inspect.isclass(target) else target
            fn = inspect.unwrap(fn) if fn is not None else None
            code = getattr(fn, "__code__", None)
            if isinstance(code, CodeType):
                codes[code] = kind
        return codes

    def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()


class LoopWatchdog(threading.Thread):
    """Sees when the event loop did not tick for `threshold` seconds, and reports who held it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        monitor: RunTimeMonitor,
        running: Callable[[], list[ClaimedJob]],
        async_kinds: set[str],
        codes: dict[CodeType, str],
        threshold: float = BLOCK_THRESHOLD,
        interval: float = WATCH_INTERVAL,
    ) -> None:
        super().__init__(name="offload-loop-watchdog", daemon=True)
        self.loop = loop
        self.monitor = monitor
        self.running = running
        self.async_kinds = async_kinds
        self.codes = codes
        self.threshold = threshold
        self.interval = interval
        self._stop = threading.Event()
        self._loop_thread: int | None = None
        self.blocked_since: float | None = None  # time.monotonic() while the loop is held

    def stop(self) -> None:
        self._stop.set()

    def _tick(self, done: threading.Event) -> None:
        self._loop_thread = threading.get_ident()
        done.set()

    def run(self) -> None:
        while not self._stop.is_set():
            done = threading.Event()
            sent = time.monotonic()
            try:
                self.loop.call_soon_threadsafe(self._tick, done)
            except RuntimeError:
                return  # the loop is closed: the worker is stopping
            if not done.wait(self.threshold):
                culprits = self._culprits()
                self.blocked_since = sent
                while not done.wait(self.interval):
                    if self._stop.is_set() or not self.loop.is_running():
                        return
                self.blocked_since = None
                self.monitor.blocked(culprits, time.monotonic() - sent)
            self._stop.wait(self.interval)

    def _culprits(self) -> list[ClaimedJob]:
        """The job whose code holds the loop, found on the loop thread's stack; when none is
        (the code is not a declared function's), every async job running now."""
        held = [j for j in self.running() if j.kind in self.async_kinds]
        frame: FrameType | None = None
        if self._loop_thread is not None:
            frame = sys._current_frames().get(self._loop_thread)
        kinds: set[str] = set()
        while frame is not None:
            kind = self.codes.get(frame.f_code)
            if kind is not None:
                kinds.add(kind)
                break
            frame = frame.f_back
        if kinds:
            mine = [j for j in held if j.kind in kinds]
            if mine:
                return mine[:1]
        return held
