"""Runs iteration jobs and the other long-job duties of an executor (docs/long-jobs.md).

An iteration job is a generator function (sync or async) called with `cursor=` (its stored
cursor, None on the first run) that yields its new cursor after each item or batch. After each
yield the cursor is checked (JSON), counted as one item done (unless the job reports its own
progress) and stored at least every `checkpoint_every` (seconds, or an int number of yields),
fenced by the lease token; a checkpoint also reads the job's stop request. Then, if the job
should stop (`JobContext.stop_reason`: its worker shuts down, its time slice is over, it was
paused or cancelled, or `throttle_on` said so), the generator is closed at that yield and the
run ends in an outcome that stores the last cursor with it: put back available (no attempt
used), scheduled after the throttle's delay, or ended `cancelled`. An exception fails the
attempt as usual, and the last cursor is stored with the failure, so the retry resumes there.

`Watch` polls, once every `WATCH_EVERY` seconds and only while some run is watched (an
iteration job, or a job whose code asked for `stop_requested` or reported progress), the stop
requests of those runs in the store (one read by primary key), and stores the progress that
plain jobs reported since. `write` stores what outcomes carry beside their acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from offload.app._context import JobContext, Snooze
from offload.jobs._encrypt import seal_result
from offload.jobs._long import DEFAULT_CHECKPOINT_EVERY
from offload.jobs._payload import check_json
from offload.store._contract import Checkpoint, Lease, PutBack, Store
from offload.worker._versions import refuse

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.worker._executor import Outcome, _Running

log = logging.getLogger("offload.worker")
WATCH_EVERY = 0.5  # seconds between polls of the stop requests of watched runs
LOST = "lost"  # the run's lease was lost: it ends without writing anything


class Iteration:
    """One run of an iteration job: its context, and when its cursor is stored next."""

    def __init__(self, app: Offload, entry: _Running, ctx: JobContext) -> None:
        self.app = app
        self.entry = entry
        self.ctx = ctx
        every = ctx.meta.get("checkpoint_every") if ctx.meta else None
        if every is None or isinstance(every, bool) or not isinstance(every, (int, float)):
            job_type = app.jobs.get(ctx.kind)
            every = (
                job_type.options_.checkpoint_every
                if job_type is not None
                else DEFAULT_CHECKPOINT_EVERY
            )
        self.every_yields = every if isinstance(every, int) else 0
        self.every_seconds = float(every) if not isinstance(every, int) else 0.0
        self.saved_at = time.monotonic()
        self.since_saved = 0

    @staticmethod
    def begin(app: Offload, entry: _Running, run: list[Any]) -> Iteration | None:
        """Read where the job stands (one store read) and make its context; None when its
        lease was lost meanwhile."""
        job = entry.job
        state = app.store.job_iteration_state(Lease(job.id, job.lease_token))
        if state is None:
            return None
        ctx = JobContext(app, job, entry)
        run[2] = ctx
        ctx.cursor = state.cursor
        ctx.done = state.done
        ctx.total = state.total
        entry.stop = state.stop_request
        entry.watched = True
        entry.iterating = True
        return Iteration(app, entry, ctx)

    def step(self, cursor: Any) -> Checkpoint | None:
        """After a yield: check and keep the cursor; the checkpoint to store now, if due."""
        ctx = self.ctx
        ctx.cursor = check_json(cursor, f"the cursor {ctx.kind}() yielded", path="cursor")
        ctx.counted()
        self.since_saved += 1
        due = (
            self.since_saved >= self.every_yields
            if self.every_yields
            else time.monotonic() - self.saved_at >= self.every_seconds
        )
        return ctx.checkpoint(True) if due else None

    def saved(self, requests: dict[int, str | None]) -> bool:
        """A checkpoint was written: False when the lease was lost (the run must end)."""
        self.saved_at = time.monotonic()
        self.since_saved = 0
        if self.ctx.id not in requests:
            return False
        request = requests[self.ctx.id]
        if request is not None:
            self.entry.stop = request
        return True

    def save(self, checkpoint: Checkpoint) -> bool:
        """Store a checkpoint (from the job's thread); a store that fails is told in a log
        line, and the job goes on (the next checkpoint tries again)."""
        try:
            requests = self.app.store.job_checkpoint_many([checkpoint])
        except Exception as exc:
            log.warning(
                "job %s (%s): storing its cursor failed (%s)", self.ctx.id, self.ctx.kind, exc
            )
            return True
        return self.saved(requests)

    def stop_reason(self) -> str | None:
        return self.ctx.stop_reason()

    def stopped(self, outcome: type[Outcome], reason: str) -> Outcome:
        """The outcome of a run stopped early at a yield, for `reason`."""
        return stopped_outcome(outcome, self.ctx, reason)


def stopped_outcome(outcome: type[Outcome], ctx: JobContext, reason: str) -> Outcome:
    """The outcome of a run that stopped early: ended cancelled, or put back (after the
    throttle's delay), its checkpoint stored with it; nothing when its lease was lost."""
    job = ctx._job
    if reason == LOST:
        log.warning("job %s (%s): its lease was lost; stopped", job.id, job.kind)
        return outcome(job, False, settled=True)
    how = "cancel" if reason == "cancel" else "back"
    delay = (ctx.throttled() or 0.0) if reason == "throttle" else 0.0
    return outcome(job, False, stopped=how, delay=delay, checkpoint=ctx.checkpoint(True))


def snoozed(outcome: type[Outcome], ctx: JobContext | None, job: Any, snooze: Snooze) -> Outcome:
    """The outcome of a run that called `snooze(seconds)`."""
    checkpoint = (
        ctx.checkpoint(ctx.cursor is not None)
        if ctx is not None
        else Checkpoint(job.id, job.lease_token, has_cursor=False)
    )
    return outcome(job, False, stopped="back", delay=snooze.seconds, checkpoint=checkpoint)


def iterate_sync(
    app: Offload, entry: _Running, run: list[Any], call: Callable[..., Any], outcome: type[Outcome]
) -> Outcome:
    """Run a sync iteration job (`call(cursor)` makes its generator) on this thread."""
    it = Iteration.begin(app, entry, run)
    if it is None:
        return stopped_outcome(outcome, JobContext(app, entry.job), LOST)
    gen = call(it.ctx.cursor)
    while True:
        try:
            value = next(gen)
        except StopIteration as end:
            return _finished(outcome, it, end.value)
        due = it.step(value)
        if due is not None and not it.save(due):
            gen.close()
            return it.stopped(outcome, LOST)
        reason = it.stop_reason()
        if reason is not None:
            gen.close()
            return it.stopped(outcome, reason)


async def iterate_async(
    app: Offload, entry: _Running, run: list[Any], call: Callable[..., Any], outcome: type[Outcome]
) -> Outcome:
    """Run an async iteration job on the executor's event loop; store reads and writes go to
    threads, never on the loop."""
    loop = asyncio.get_running_loop()
    it = await loop.run_in_executor(None, Iteration.begin, app, entry, run)
    if it is None:
        return stopped_outcome(outcome, JobContext(app, entry.job), LOST)
    gen = call(it.ctx.cursor)
    while True:
        try:
            value = await gen.__anext__()
        except StopAsyncIteration:
            return _finished(outcome, it, None)
        due = it.step(value)
        if due is not None and not await loop.run_in_executor(None, it.save, due):
            await gen.aclose()
            return it.stopped(outcome, LOST)
        if it.ctx._throttle is None:
            reason = it.stop_reason()
        else:  # the job type's throttle_on may block: not on the loop
            reason = await loop.run_in_executor(None, it.stop_reason)
        if reason is not None:
            await gen.aclose()
            return it.stopped(outcome, reason)


def _finished(outcome: type[Outcome], it: Iteration, result: Any) -> Outcome:
    """The generator is exhausted: the job completes with what it returned; its last cursor
    and progress are stored with the completion."""
    ctx = it.ctx
    value = check_json(result, f"the result of {ctx.kind}()", path="result")
    value = seal_result(ctx.kind, value, ctx._job.meta)  # an encrypted job's
    return outcome(ctx._job, True, result=value, checkpoint=ctx.checkpoint(True))


def attach(o: Outcome, ctx: JobContext) -> Outcome:
    """Give an outcome the checkpoint its run has not stored yet: an iteration job's last
    cursor (the retry of a failed attempt resumes there), or progress a job reported since
    it was last stored."""
    if o.checkpoint is not None or o.settled or o.stopped:
        return o
    iterates = bool(getattr(ctx._run, "iterating", False))
    if iterates or ctx.unsaved:
        o.checkpoint = ctx.checkpoint(iterates)
    return o


def write(store: Store, outcomes: Sequence[Outcome]) -> None:
    """Store what outcomes carry beside their acknowledgement: checkpoints of jobs that
    complete or fail (before the acknowledgement, which is written after this), jobs put back
    and jobs ended cancelled. Nothing for outcomes that carry none (ordinary jobs)."""
    checkpoints = [o.checkpoint for o in outcomes if o.checkpoint is not None and not o.stopped]
    back = [
        PutBack(o.checkpoint, o.delay)
        for o in outcomes
        if o.stopped == "back" and o.checkpoint is not None
    ]
    cancelled = [o.checkpoint for o in outcomes if o.stopped == "cancel" and o.checkpoint]
    if checkpoints:
        store.job_checkpoint_many(checkpoints)
    if back:
        store.job_put_back_many(back)
    if cancelled:
        store.job_cancel_running_many(cancelled)
    refuse(store, outcomes)  # arguments newer than the worker knows (_versions.py)


def carries(outcomes: Sequence[Outcome]) -> bool:
    """Whether any outcome carries something for `write`."""
    return any(o.checkpoint is not None or o.stopped for o in outcomes)


class Watch:
    """Polls the stop requests of an executor's watched runs and stores plain jobs' progress,
    in a daemon thread that runs while the executor is open and some run is watched."""

    def __init__(self, app: Offload, runs: Callable[[], list[_Running]]) -> None:
        self.app = app
        self.runs = runs
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def start(self) -> None:
        """Start the thread (once)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._main, name="offload-watch", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        self._closed.set()

    def _main(self) -> None:
        while not self._closed.wait(WATCH_EVERY):
            runs = [r for r in self.runs() if not r.reported]
            if not runs:
                continue
            try:
                self.tick(runs)
            except Exception as exc:
                log.warning("reading stop requests failed (%s); trying again", exc)

    def tick(self, runs: list[_Running]) -> None:
        store = self.app.store
        requests = store.job_stop_requests([Lease(r.job.id, r.job.lease_token) for r in runs])
        for r in runs:
            request = requests.get(r.job.id)
            if request is not None:
                r.stop = request
        progress = []
        for r in runs:
            cell = r.cell  # read once: the run may end (and clear it) meanwhile
            ctx = cell[2] if cell is not None else None
            if ctx is not None and ctx.unsaved and not r.iterating:
                progress.append(ctx.checkpoint(False))
        if progress:
            store.job_checkpoint_many(progress)
