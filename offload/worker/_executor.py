"""Runs claimed jobs: sync code on threads, async code on one event-loop thread.

Each run ends in an `Outcome` handed to a callback; the worker turns outcomes into batched
acknowledgements. The executor holds more jobs than it runs: jobs submitted while every slot is
busy wait in a local buffer (the worker's prefetch) and start as slots free up, without a round
trip through the worker's loop. A buffered job whose lease may have run out (heartbeats failed)
is dropped instead of started, since it may be rescued and running elsewhere already.

Crash accounting (docs/crashes.md): the store charges a lost worker's crash only to the jobs
whose start it recorded. At-least-once jobs begin unrecorded; `to_record` reports those that have
run a little while for the worker's next cycle to record. Two kinds of job have their start
recorded before they begin, so that the store never takes a job that ran for one that did not:
at-most-once jobs (the claim records those that go straight into free slots; one it held waits
for the worker's cycle), and isolated jobs (ones a lost worker held before). An isolated job runs
alone: once it reaches the head of the buffer nothing else starts, and it begins when the jobs
running beside it are done.

The running job's context (`offload.current_job()`, app/_context.py) is set around each run.
A job that completed itself in a store transaction ends in an outcome marked `settled`, which
the worker does not acknowledge.

A job past its timeout is reported as a timed-out failure at once: async
jobs are cancelled, and a sync job's thread is told to stop (an exception raised into it at
its next Python instruction) and replaced, so the worker keeps its full capacity either way.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
import math
import queue
import threading
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from offload._errors import (
    EncryptionKeyError,
    InvalidArgumentsError,
    JobTimeoutError,
    PayloadDecodeError,
)
from offload._text import printable
from offload.app import _context as context
from offload.app._context import JobContext
from offload.jobs._encrypt import ENCRYPT_META, open_args, seal_result
from offload.jobs._payload import check_json
from offload.jobs._secrets import masked_encrypted
from offload.outcome import throttle_of
from offload.store._contract import Checkpoint, ClaimedJob
from offload.worker import _iteration as iteration
from offload.worker import _versions as versions

if TYPE_CHECKING:
    from offload.app._offload import Offload

log = logging.getLogger("offload.worker")
_TRACEBACK_LINES = 40
# Seconds until an encrypted job this worker has no key for may run again (elsewhere).
KEYLESS_DELAY = 30.0


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
    settled: bool = False  # completed by the job itself in a store transaction: no ack
    # Long jobs (_iteration.py): stopped early ('back': put back after `delay` seconds, no
    # attempt used; 'cancel': ended cancelled; 'version': given back after `delay` seconds, its
    # arguments newer than this worker knows, _versions.py), and the checkpoint stored.
    stopped: str | None = None
    delay: float = 0.0
    checkpoint: Checkpoint | None = None


_NEVER = threading.Event()  # the halt of a run outside an executor: never set


@dataclass(slots=True)
class _Running:
    job: ClaimedJob
    started: float
    lease_until: float = math.inf  # time.monotonic() by which the lease may have run out
    begun: bool = False  # taken by a slot (a sync job's thread, or the event loop)
    thread: threading.Thread | None = None
    future: Any = None
    reported: bool = False  # changed under the executor's lock
    recorded: bool = False  # the store has recorded its start (by the claim, or a cycle)
    alone: bool = False  # isolated: it runs alone, its start recorded before it begins
    strict: bool = False  # at-most-once: its start is recorded before it begins
    requested: bool = False  # waits for the worker's cycle to record its start, then begins
    begun_at: float = 0.0  # time.monotonic() when it began
    # Long jobs (app/_context.py's Run, _iteration.py): the worker's shutdown, a stop request
    # read from the store, whether its stop requests are polled, and the run's context cell.
    halt: threading.Event = _NEVER
    stop: str | None = None
    watched: bool = False
    iterating: bool = False
    cell: list[Any] | None = None


def _format_error(exc: BaseException) -> tuple[str, str]:
    """The error line and traceback head of an attempt, as text every engine stores: a NUL or
    a lone surrogate in them (e.g. from a message quoting bad input) is replaced by U+FFFD,
    so that one job's error cannot fail the batch of acknowledgements it rides in."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(lines)
    head = "\n".join(text.splitlines()[-_TRACEBACK_LINES:])
    return printable(f"{type(exc).__name__}: {exc}"), printable(head)


class Executor:
    """A fixed number of slots running jobs of one application, and the jobs waiting for one."""

    def __init__(
        self,
        app: Offload,
        concurrency: int,
        on_done: Callable[[Outcome], None],
        on_record: Callable[[], None] = lambda: None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.app = app
        self.concurrency = concurrency
        self.on_done = on_done
        self.on_record = on_record  # a job waits for its start to be recorded (`to_record`)
        self._tasks: queue.SimpleQueue[_Running | None] = queue.SimpleQueue()
        self._running: dict[int, _Running] = {}  # every job held: running or waiting
        self._waiting: collections.deque[_Running] = collections.deque()
        self._active = 0  # slots taken
        self._alone: _Running | None = None  # an isolated job running, or about to
        self._isolated = 0  # isolated jobs held
        self._requests: list[_Running] = []  # waiting for their start to be recorded
        self._unrecorded: dict[int, _Running] = {}  # begun, start not recorded: oldest first
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._threads_short = True  # start (or replace) threads at the next sync job
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._closed = False
        self.on_loop: Callable[[asyncio.AbstractEventLoop], None] | None = None  # _runtime.py
        self.dropped = 0  # waiting jobs dropped because their lease may have run out
        # Long jobs: set when the worker stops (iteration jobs stop at their next yield), and
        # the poll of watched runs' stop requests (_iteration.py).
        self.halt = threading.Event()
        self._watch = iteration.Watch(app, self._watched)
        self._watching = False

    # --- capacity ---------------------------------------------------------------------
    def free_slots(self) -> int:
        with self._lock:
            return self.concurrency - len(self._running)

    def busy(self) -> int:
        """Jobs held: running, or waiting for a slot."""
        with self._lock:
            return len(self._running)

    held = busy

    def running_jobs(self) -> list[ClaimedJob]:
        """Every job held (running or waiting): their leases must be kept."""
        with self._lock:
            return [r.job for r in self._running.values()]

    def running_since(self) -> list[tuple[ClaimedJob, float]]:
        """Jobs begun and not ended, with the time.monotonic() each began (worker/_runtime.py
        reports those past their max_run_time while they still run)."""
        with self._lock:
            return [(r.job, r.started) for r in self._running.values() if r.begun]

    def startable(self) -> int:
        """How many jobs submitted now would begin at once: the claim records their start."""
        with self._lock:
            if self._alone is not None or self._waiting:
                return 0
            return self.concurrency - self._active

    def isolating(self) -> bool:
        """Whether an isolated job is held: nothing new is claimed until it has run. (Read
        without the lock, as the loop asks at every turn: a count changed under it.)"""
        return self._isolated > 0

    # --- running ----------------------------------------------------------------------
    def submit(self, job: ClaimedJob, lease_until: float = math.inf) -> None:
        """Start a claimed job, or keep it until a slot is free. `lease_until` is the
        `time.monotonic()` after which its lease may have expired unless renewed. A job whose
        start the claim recorded takes a free slot at once (the claim counted on one)."""
        entry = _Running(job, time.monotonic(), lease_until, recorded=job.started, halt=self.halt)
        if not self._watching:  # started once: it reads the store only while runs are watched
            self._watching = True
            self._watch.start()
        ready: list[_Running] = []
        if job.isolated:
            entry.alone = True
        if job.delivery != "at_least_once":
            entry.strict = True
        with self._lock:
            self._running[job.id] = entry
            if entry.alone:
                self._isolated += 1
            elif self._active >= self.concurrency:  # every slot busy: it waits its turn
                self._waiting.append(entry)
                return
            elif entry.recorded and self._alone is None:
                self._active += 1
                ready = [entry]
            if not ready:
                self._waiting.append(entry)
                ready = self._next_locked()
        if ready:
            self._begin(ready)

    def _next_locked(self) -> list[_Running]:
        """Take slots for the waiting jobs that may begin now (under the lock), in order: an
        isolated job at the head waits for every slot to be free, then runs alone; a job whose
        start must be recorded first is handed to the worker's cycle (`to_record`)."""
        ready: list[_Running] = []
        waiting = self._waiting
        while waiting and self._alone is None:
            head = waiting[0]
            if head.alone:
                if self._active > 0:
                    break  # the jobs running beside it finish first; nothing new starts
                waiting.popleft()
                self._alone = head
                self._active += 1
                if head.recorded:
                    ready.append(head)
                else:
                    self._request(head)
                break
            if self._active >= self.concurrency:
                break
            if head.recorded:
                waiting.popleft()
                self._active += 1
                ready.append(head)
            elif head.strict:
                if not head.requested:
                    self._request(head)
                break
            else:  # it begins now: its start is recorded by a later cycle
                waiting.popleft()
                self._active += 1
                ready.append(head)
                head.begun_at = time.monotonic()
                self._unrecorded[head.job.id] = head
        return ready

    def _request(self, entry: _Running) -> None:
        entry.requested = True
        self._requests.append(entry)
        self.on_record()

    def to_record(self, begun_before: float) -> list[ClaimedJob]:
        """Jobs whose start the worker's next cycle records: those waiting for it to begin,
        and those begun from the buffer before `begun_before` (monotonic) and still running
        (a job that ends sooner is acknowledged instead)."""
        with self._lock:
            out = [r.job for r in self._requests]
            for entry in self._unrecorded.values():  # in the order they began
                if entry.begun_at >= begun_before:
                    break
                out.append(entry.job)
        return out

    def record_due(self) -> float | None:
        """The time.monotonic() at which the first job still running unrecorded began (None
        when there is none); -inf when a job waits for its record to begin."""
        with self._lock:
            if self._requests:
                return -math.inf
            for entry in self._unrecorded.values():
                return entry.begun_at
            return None

    def recorded(self, jobs: Collection[ClaimedJob], lost: Collection[int] = ()) -> None:
        """The store recorded the start of `jobs`, except `lost` ones (their lease was lost:
        those that wait are dropped). Jobs waiting for their record begin."""
        gone = set(lost)
        ids = {j.id for j in jobs}
        with self._lock:
            for job_id in ids:
                self._unrecorded.pop(job_id, None)  # a lost one's result is discarded anyway
                entry = self._running.get(job_id)
                if entry is not None and job_id not in gone:
                    entry.recorded = True
            ready: list[_Running] = []
            keep: list[_Running] = []
            for entry in self._requests:
                if entry.job.id not in ids:
                    keep.append(entry)
                    continue
                entry.requested = False
                if entry.job.id in gone:
                    self._drop_locked(entry)
                elif entry is self._alone:
                    ready.append(entry)  # its slot is taken already
            self._requests = keep
            ready += self._next_locked()
        self._begin(ready)

    def _drop_locked(self, entry: _Running) -> None:
        """Forget a held job that must not begin (under the lock)."""
        entry.reported = True
        self._running.pop(entry.job.id, None)
        self._unrecorded.pop(entry.job.id, None)
        if entry.alone:
            self._isolated -= 1
        if entry is self._alone:
            self._alone = None
            self._active -= 1
        else:
            try:
                self._waiting.remove(entry)
            except ValueError:
                pass

    def waiting_alone(self, since: float) -> list[ClaimedJob]:
        """Isolated jobs waiting (since before `since`, monotonic) for the jobs beside them to
        finish: the worker may hand them back to an idle worker."""
        with self._lock:
            return [r.job for r in self._waiting if r.alone and r.started < since]

    def take_back(self, ids: Collection[int]) -> list[ClaimedJob]:
        """Remove waiting jobs that have not begun (to release them)."""
        taken = []
        with self._lock:
            for entry in list(self._waiting):
                if entry.job.id in ids and not entry.requested:
                    self._drop_locked(entry)
                    taken.append(entry.job)
            ready = self._next_locked()
        self._begin(ready)
        return taken

    def renew(self, until: float, lost: Collection[int] = ()) -> None:
        """Leases were extended to `until` (monotonic), except those of `lost` jobs, which
        must not start any more when they are still waiting."""
        with self._lock:
            for entry in self._running.values():
                if entry.job.id not in lost:
                    entry.lease_until = max(entry.lease_until, until)
                elif not entry.begun:
                    entry.lease_until = -math.inf

    def _begin(self, ready: list[_Running], inline: bool = False) -> _Running | None:
        """Run entries in the slots they were given; with `inline`, the first sync one is
        returned for the calling job thread to run itself (no hand-over to another thread)."""
        mine: _Running | None = None
        todo = ready  # grows when a dropped entry's slot goes to the next
        i = 0
        while i < len(todo):
            entry = todo[i]
            i += 1
            if entry.lease_until <= time.monotonic():
                log.warning(
                    "job %s (%s) waited past its lease for a slot: not started (it is rescued "
                    "and runs elsewhere)",
                    entry.job.id,
                    entry.job.kind,
                )
                with self._lock:
                    self.dropped += 1
                    entry.reported = True
                    self._running.pop(entry.job.id, None)
                    self._unrecorded.pop(entry.job.id, None)
                    if entry.alone:
                        self._isolated -= 1
                    if entry is self._alone:
                        self._alone = None
                    self._active -= 1
                    todo.extend(self._next_locked())
                continue
            got = self._start(entry, inline and mine is None)
            if got is not None:
                mine = got
        return mine

    def _start(self, entry: _Running, inline: bool = False) -> _Running | None:
        """Run an entry in the slot it was given. With `inline`, a sync job is returned for the
        calling job thread to run itself (no hand-over to another thread)."""
        entry.begun = True
        job_type = self.app.jobs.get(entry.job.kind)
        if job_type is not None and job_type.is_async:
            loop = self._event_loop()
            entry.future = asyncio.run_coroutine_threadsafe(self._run_async(entry), loop)
            return None
        if inline:
            return entry
        if self._threads_short:
            self._ensure_threads()
        self._tasks.put(entry)
        return None

    def _ensure_threads(self) -> None:
        with self._lock:
            self._threads_short = False
            missing = self.concurrency - len(self._threads)
        for _ in range(missing):
            t = threading.Thread(target=self._thread_main, name="offload-job", daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def _thread_main(self) -> None:
        try:
            self._serve()
        except JobTimeoutError:
            pass  # a retired thread's stop request arrived after its job had returned
        finally:
            me = threading.current_thread()
            with self._lock:
                if me in self._threads:  # not retired: it died; replace it at the next job
                    self._threads.remove(me)
                    self._threads_short = True

    def _serve(self) -> None:
        me = threading.current_thread()
        following: _Running | None = None
        while True:
            entry = following if following is not None else self._tasks.get()
            following = None
            if entry is None:
                return
            entry.thread = me
            entry.started = time.monotonic()
            try:
                outcome = self._run_sync(entry)
            except JobTimeoutError:
                outcome = None  # already reported by the watchdog
            if getattr(me, "retired", False):
                if outcome is not None:
                    self._finish(entry, outcome)
                return
            if outcome is not None:  # this thread goes on with the next waiting sync job
                following = self._finish(entry, outcome, inline=True)[1]

    def _run_sync(self, entry: _Running) -> Outcome:
        job = entry.job
        job_type = self.app.jobs.get(job.kind)
        if job_type is None:
            return self._unknown(job)
        run: list[Any] = [self.app, job, None, entry]  # context.cell, on every job's path
        entry.cell = run
        token = context.CURRENT.set(run)  # offload.current_job() in the job's code
        try:
            fn = job_type.function()
            opened = self._opened(job)  # an encrypted job's arguments, before any upgrade
            if isinstance(opened, Outcome):
                return opened
            job = opened
            given = versions.arguments(job_type, job, Outcome)
            if isinstance(given, Outcome):  # a failed upgrade, or a newer version
                return given
            try:
                args, kwargs = job_type.signature.call_args(given)
            except (InvalidArgumentsError, PayloadDecodeError) as exc:
                return self._unbound(job, exc)
            if job_type.iterates:
                outcome = self._iterate(entry, run, fn, args, kwargs)
            else:
                result = fn(*args, **kwargs)
                outcome = self._success(entry, result)
        except JobTimeoutError:
            raise
        except context.Snooze as snooze:
            outcome = iteration.snoozed(Outcome, run[2], job, snooze)
        except Exception as exc:
            outcome = self._failure(job, exc)
        finally:
            context.CURRENT.reset(token)
            entry.cell = None  # no reference cycle left behind (run -> entry -> run)
        if run[2] is not None:
            outcome = self._long_outcome(run, outcome)
        return outcome

    async def _run_async(self, entry: _Running) -> None:
        job = entry.job
        job_type = self.app.jobs[job.kind]
        entry.started = time.monotonic()
        run = context.cell(self.app, job, entry)
        entry.cell = run
        context.CURRENT.set(run)  # in this task's own context: nothing to restore after
        try:
            fn = job_type.function()
            opened = self._opened(job)  # an encrypted job's arguments, before any upgrade
            if isinstance(opened, Outcome):
                self._finish(entry, opened)
                return
            job = opened
            given = versions.arguments(job_type, job, Outcome)
            if isinstance(given, Outcome):  # a failed upgrade, or a newer version
                self._finish(entry, given)
                return
            try:
                args, kwargs = job_type.signature.call_args(given)
            except (InvalidArgumentsError, PayloadDecodeError) as exc:
                self._finish(entry, self._unbound(job, exc))
                return
            if job_type.iterates:
                outcome = await asyncio.wait_for(
                    self._iterate_async(entry, run, fn, args, kwargs), job.timeout
                )
            else:
                result = await asyncio.wait_for(fn(*args, **kwargs), job.timeout)
                outcome = self._success(entry, result)
        except TimeoutError:
            outcome = self._timeout(entry)
        except context.Snooze as snooze:
            outcome = iteration.snoozed(Outcome, run[2], job, snooze)
        except Exception as exc:
            outcome = self._failure(job, exc)
        if (ctx := context.completed(run)) is not None:  # a store read: not on the loop
            outcome.settled = await asyncio.get_running_loop().run_in_executor(None, _settled, ctx)
        elif run[2] is not None:
            outcome = iteration.attach(outcome, run[2])
        entry.cell = None  # no reference cycle left behind (run -> entry -> run)
        self._finish(entry, outcome)

    # --- long jobs (docs/long-jobs.md, _iteration.py) -----------------------------------
    def _iterate(
        self, entry: _Running, run: list[Any], fn: Any, args: list[Any], kwargs: dict[str, Any]
    ) -> Outcome:
        """Run a sync iteration job: its generator is made with the stored cursor."""
        return iteration.iterate_sync(
            self.app, entry, run, lambda cursor: fn(*args, cursor=cursor, **kwargs), Outcome
        )

    async def _iterate_async(
        self, entry: _Running, run: list[Any], fn: Any, args: list[Any], kwargs: dict[str, Any]
    ) -> Outcome:
        """Run an async iteration job on the event loop."""
        return await iteration.iterate_async(
            self.app, entry, run, lambda cursor: fn(*args, cursor=cursor, **kwargs), Outcome
        )

    def _long_outcome(self, run: list[Any], outcome: Outcome) -> Outcome:
        """A run whose code used its context: settled when it completed itself, else with the
        checkpoint it has not stored yet (_iteration.attach)."""
        if (ctx := context.completed(run)) is not None:
            outcome.settled = _settled(ctx)
            return outcome
        return iteration.attach(outcome, run[2])

    def _watched(self) -> list[_Running]:
        """Runs whose stop requests are polled (_iteration.Watch)."""
        with self._lock:
            return [r for r in self._running.values() if r.watched and r.begun]

    def _failure(self, job: ClaimedJob, exc: Exception) -> Outcome:
        error, tb = _format_error(exc)
        if ENCRYPT_META in job.meta:  # its opened values stay out of the stored error and log
            error, tb = (masked_encrypted(t, job.args, job.meta) for t in (error, tb))
        job_type = self.app.jobs.get(job.kind)
        limit = job_type.options_.limit if job_type is not None else None
        adaptive = limit.adaptive if limit is not None else None
        throttled, retry_after = throttle_of(exc, adaptive)  # the outcome policy's call
        return Outcome(
            job, False, error=error, traceback=tb, throttled=throttled, retry_after=retry_after
        )

    def _success(self, entry: _Running, result: Any) -> Outcome:
        """A completion, or a failed attempt when the result cannot be stored (not JSON, or a
        string with a NUL or a lone surrogate: `InvalidTextError`). Checked here, per job, so
        that the batch of acknowledgements this one rides in stays good for the others."""
        try:
            value = check_json(result, f"the result of {entry.job.kind}()", path="result")
            value = seal_result(entry.job.kind, value, entry.job.meta)  # an encrypted job's
        except Exception as exc:
            error, tb = _format_error(exc)
            return Outcome(entry.job, False, error=error, traceback=tb)
        return Outcome(entry.job, True, result=value)

    def _unbound(self, job: ClaimedJob, exc: Exception) -> Outcome:
        """Stored arguments that do not fit this worker's version of the job type
        (`Signature.mismatch`): a failed attempt, retried with the job type's backoff. No
        traceback: the job's code never ran."""
        return Outcome(job, False, error=f"{type(exc).__name__}: {exc}")

    def _opened(self, job: ClaimedJob) -> ClaimedJob | Outcome:
        """The job with its encrypted arguments opened (itself when it has none), or the
        outcome of the attempt when they cannot be: no key here, or data that does not open."""
        try:
            plain = open_args(job.kind, job.args, job.meta)
        except EncryptionKeyError as exc:
            return self._keyless(job, exc)
        except PayloadDecodeError as exc:
            return self._unbound(job, exc)
        return job if plain is job.args else replace(job, args=plain)

    def _keyless(self, job: ClaimedJob, exc: EncryptionKeyError) -> Outcome:
        """An encrypted job this worker has no key for: put back without using an attempt,
        to run again after `KEYLESS_DELAY` seconds (on a worker that has the key), and said in
        an error line, as the job's code never ran."""
        log.error("job %s (%s) put back unrun: %s", job.id, job.kind, exc)
        checkpoint = Checkpoint(job.id, job.lease_token, has_cursor=False)
        return Outcome(job, False, stopped="back", delay=KEYLESS_DELAY, checkpoint=checkpoint)

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

    def _finish(
        self, entry: _Running, outcome: Outcome, inline: bool = False
    ) -> tuple[bool, _Running | None]:
        """Report an outcome once (False when another outcome was reported first) and give the
        slot to the next waiting job; with `inline`, a sync one is returned for the calling job
        thread to run."""
        with self._lock:
            if entry.reported:
                return False, None
            entry.reported = True
            job_id = entry.job.id
            self._running.pop(job_id, None)
            if not entry.recorded:
                self._unrecorded.pop(job_id, None)
            self._active -= 1
            if entry.alone:
                self._isolated -= 1
                if entry is self._alone:
                    self._alone = None
            ready = self._next_locked()
        outcome.duration = time.monotonic() - entry.started
        self.on_done(outcome)
        return True, self._begin(ready, inline) if ready else None

    # --- timeouts ---------------------------------------------------------------------
    def check_timeouts(self) -> float | None:
        """Report jobs past their timeout; return seconds until the next one could expire."""
        now = time.monotonic()
        soonest: float | None = None
        with self._lock:
            entries = list(self._running.values())
        for entry in entries:
            if entry.job.timeout is None or entry.future is not None or not entry.begun:
                continue
            left = entry.started + entry.job.timeout - now
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
                continue
            thread = entry.thread
            if not self._finish(entry, self._timeout(entry))[0]:
                continue  # the job finished just now: its thread must not be stopped
            if thread is not None:
                thread.retired = True  # type: ignore[attr-defined]
                _raise_in_thread(thread, JobTimeoutError)
                with self._lock:
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
            if self.on_loop is not None:  # the loop watchdog (worker/_runtime.py)
                self.on_loop(loop)
        return self._loop

    def take_unstarted(self) -> list[ClaimedJob]:
        """Remove jobs that were handed over but not started yet (for release at shutdown)."""
        taken = []
        with self._lock:
            waiting = list(self._waiting)
            self._waiting.clear()
            self._requests.clear()
            alone = self._alone
            if alone is not None and not alone.begun:
                waiting.append(alone)
                self._alone = None
                self._active -= 1
        for entry in waiting:
            with self._lock:
                entry.reported = True
                self._running.pop(entry.job.id, None)
                if entry.alone:
                    self._isolated -= 1
            taken.append(entry.job)
        while True:
            try:
                handed = self._tasks.get_nowait()
            except queue.Empty:
                break
            if handed is None:
                continue
            with self._lock:
                handed.reported = True
                self._running.pop(handed.job.id, None)
                self._unrecorded.pop(handed.job.id, None)
                self._active -= 1
                if handed.alone:
                    self._isolated -= 1
                if handed is self._alone:
                    self._alone = None
            taken.append(handed.job)
        return taken

    def abandon_running(self) -> list[ClaimedJob]:
        """Stop reporting for every running job (shutdown past the grace period)."""
        abandoned = []
        with self._lock:
            entries = list(self._running.values())
            self._running.clear()
            self._waiting.clear()
            self._requests.clear()
            self._unrecorded.clear()
            self._alone = None
            self._isolated = 0
        for entry in entries:
            with self._lock:
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
        self._watch.close()
        for _ in self._threads:
            self._tasks.put(None)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(5.0)
            if not self._loop.is_running():
                self._loop.close()


def _settled(ctx: JobContext) -> bool:
    """Whether a job that completed itself needs no acknowledgement (`_context.settled`); when
    the store cannot say, the worker acknowledges it (a stale ack changes nothing)."""
    try:
        return context.settled(ctx)
    except Exception as exc:
        log.warning("could not read job %s after it completed itself (%s)", ctx.id, exc)
        return False


def _raise_in_thread(thread: threading.Thread, exc: type[BaseException]) -> None:
    """Ask a thread to raise `exc` at its next Python instruction (best effort)."""
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))
