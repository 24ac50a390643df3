"""One worker process: the fetch loop, batched acknowledgements, heartbeats and shutdown.

The loop's thread owns claiming and acknowledging. While jobs are short it claims ahead: the
executor holds up to `concurrency + prefetch` jobs, those beyond the slots waiting in its buffer,
and the loop claims again when the buffer runs below half, so slots never wait for a round trip
to the store (for long jobs that wait does not matter, and held jobs would wait while other
workers idle). The acknowledgements of finished jobs ride with the next claim, in one store
transaction per cycle (`Store.job_ack_claim`); without a claim to make they are written once
half a batch is ready or `ACK_DELAY` has passed. A listener thread wakes the loop when the store
says jobs may be waiting, and sleeps while claims come back full (the loop claims again by
itself then); finished jobs wake it when a claim or an ack is due. Leases of every held job,
running or waiting, are renewed by a heartbeat thread; when heartbeats keep failing for a whole
lease the worker stops claiming, since its jobs may already be rescued elsewhere, and waiting
jobs whose lease may have run out are dropped, not started.

A store that fails (down, restarting, out of connections) is tried again after pauses of at
most a second, with few log lines (`_outage.py`), from the first contact on: a worker started
before its database waits for it. After SIGTERM nothing waits on the store past the grace
period (and a second to write what it can): a worker stops on time during an outage too.
A store that refuses writes (`StoreFullError`: a full disk) is waited for with a growing,
capped pause and a log line at a capped rate (`_refusals.py`); the worker resumes by itself
once space is freed. A damaged store (`StoreCorruptError`) stops the worker: `run()` raises it,
since no retry or restart can help.

If the process dies, the store charges the crash only to jobs whose start it recorded
(docs/crashes.md). Each cycle records the start of the jobs that began at least `RECORD_AFTER`
ago and still run (shorter ones are acknowledged instead, so that recording costs nothing while
jobs are short); an at-most-once job begins only once a cycle has recorded its start (so a
crash between the claim and that moment gives it back, uncharged), and jobs of at-most-once
types are never claimed ahead. A job that a lost worker held runs
isolated: alone in the process, its start recorded before it begins, nothing claimed until it has
run; a worker still busy with others hands it back when another worker of its queue is idle.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence

from offload._errors import ConfigurationError, StoreCorruptError, StoreError, StoreFullError
from offload._loop import BackgroundLoop
from offload.app._claim_gate import ClaimGate
from offload.app._offload import Offload
from offload.jobs._secrets import masked_text
from offload.maintenance import Maintenance
from offload.outcome import interrupted
from offload.store._contract import (
    AckResult,
    ClaimedJob,
    ClaimParams,
    Failure,
    Lease,
    Listener,
    Store,
    WorkerInfo,
)
from offload.worker._ack import count_failures, report_limits, to_acks
from offload.worker._executor import Executor, Outcome
from offload.worker._iteration import write as write_long
from offload.worker._outage import Outage, within
from offload.worker._pauses import PauseWatch, claim_scope
from offload.worker._refusals import Refusals
from offload.worker._runtime import RunTimeMonitor
from offload.worker._signals import SignalRelay

log = logging.getLogger("offload.worker")
ACK_DELAY = 0.005  # seconds an acknowledgement may wait for company when no claim is due
LIMITED_HOLD = 10.0  # seconds without prefetch after claiming jobs with a limit key
SHORT_JOB = 0.1  # prefetch only while recent jobs ran this long or less, on average (seconds)
RECORD_AFTER = 0.05  # seconds a job begun from the buffer runs before its start is recorded
ISOLATED_PATIENCE = 1.0  # seconds an isolated job waits beside busy slots before handing back
CLEANUP = 1.0  # seconds past the grace for what a stopping worker still writes to the store


class _Heartbeat(BackgroundLoop):
    name = "heartbeat"

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker.app.config.heartbeat_interval)
        self.worker = worker
        self.last_ok = time.monotonic()
        self.outage = Outage(log, "heartbeat")

    def tick(self) -> None:
        w = self.worker
        try:
            sent = time.monotonic()
            leases = [Lease(j.id, j.lease_token) for j in w.executor.running_jobs()]
            lost = w.app.store.job_heartbeat(leases, w.app.config.lease_seconds)
            w.executor.renew(sent + w.lease_margin(), set(lost))
            w.beat(len(leases))
        except Exception as exc:
            silent = time.monotonic() - self.last_ok
            if isinstance(exc, StoreCorruptError):
                w.fail(exc)
            elif isinstance(exc, StoreFullError):
                w.refusals.refused(exc, "heartbeat")
            else:
                self.outage.failed(exc)
            if silent >= w.app.config.lease_seconds and not w.claim_paused:
                log.error("heartbeats failed for a whole lease: this worker stops claiming")
                w.claim_paused = True
            return
        self.last_ok = time.monotonic()
        self.outage.succeeded()
        try:  # failed and retried attempts since the last beat, for the store's totals
            w.app.tally.flush(w.app.store)
        except Exception as exc:
            log.warning("recording failed attempts' totals failed (%s); kept for later", exc)
        try:  # overruns of max_run_time and event-loop blocks since the last beat
            w.runtime.check(w.executor.running_since())
            w.runtime.flush(w.app.store)
        except Exception as exc:
            log.warning("recording run-time reports failed (%s); kept for later", exc)
        try:
            w.hand_back_isolated()
        except Exception as exc:
            log.warning("handing isolated jobs back failed (%s); they stay here", exc)
        if w.claim_paused:
            log.info("heartbeats work again: this worker claims again")
            w.claim_paused = False
        if lost:
            log.warning("lost the lease of jobs %s; their results will be discarded", lost)


class _Wakeup(threading.Thread):
    """Waits on the store's listener and wakes the worker; pauses while the worker's claims
    come back full (it claims again by itself then, and the listener's polling would only take
    CPU from the jobs)."""

    def __init__(self, listener: Listener, worker: Worker) -> None:
        super().__init__(name="offload-listener", daemon=True)
        self.listener = listener
        self.worker = worker
        self.resume = threading.Event()
        self.resume.set()
        self.running = True

    def run(self) -> None:
        while self.running:
            if not self.resume.wait(0.5):
                continue
            try:
                if self.listener.wait(0.5):
                    self.worker.hint()
            except Exception:
                log.debug("listener failed; polling instead", exc_info=True)
                time.sleep(0.5)
        self.listener.close()


class Worker:
    """Runs jobs of an application's queues until stopped (SIGTERM/SIGINT or `stop()`)."""

    def __init__(
        self,
        app: Offload,
        queues: Sequence[str] = ("default",),
        concurrency: int = 10,
        *,
        batch: int | None = None,
        prefetch: int | None = None,
        grace: float = 30.0,
        poll_interval: float = 1.0,
        maintenance: bool = True,
        worker_id: str | None = None,
        burst: bool = False,
    ) -> None:
        self.app = app
        # Burst: stop once the queues are drained (see `_drained`); a store that cannot be
        # reached at the start is an error then, not something to wait for.
        self.burst = burst
        self._found_none = False  # burst: a claim found nothing while nothing was held
        self.queues = list(queues)
        self.concurrency = concurrency
        # Jobs claimed ahead of free slots (default: four times the slots) while jobs are
        # short; claims take up to `batch` jobs (default: as many as the executor can hold).
        self.prefetch = max(4 * concurrency if prefetch is None else prefetch, 0)
        self.batch = batch or max(concurrency + self.prefetch, 1)
        self._plain_since = 0.0  # monotonic: no job with a limit key claimed since (prefetch)
        self._run_time = math.inf  # moving average of jobs' run time; none finished yet
        self.grace = grace
        self.poll_interval = poll_interval
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.claim_paused = False
        self.refusals = Refusals()  # writes the store refused (a full disk): wait, don't spin
        self.fatal: StoreCorruptError | None = None  # why the worker had to stop, if it did
        self._wake = threading.Event()
        self._acks: list[Outcome] = []
        self._acks_since = 0.0  # when the oldest waiting acknowledgement came
        self._acks_lock = threading.Lock()
        self._hinted = True  # the listener said jobs may be waiting: claim at the next turn
        self._claimed_full = False  # the last claim took all it asked for: there may be more
        self._claimed_at = -math.inf
        self._wakeup: _Wakeup | None = None
        self._stopping = False
        self._stop_at: float | None = None  # monotonic time of the first stop()
        self._outage = Outage(log, "claim")
        self._signals = 0
        # A hard stop deregisters from the signal thread while the main or heartbeat thread may
        # be registering: the lock orders them, and no beat registers after a hard stop.
        self._registry = threading.Lock()
        self._deregistered = False
        self.executor = Executor(app, concurrency, self._on_done, self._wake.set)
        self.runtime = RunTimeMonitor(app)  # overruns and loop blocks, flushed with the beat
        self.executor.on_loop = lambda loop: self.runtime.watch(loop, self.executor.running_jobs)
        self.heartbeat = _Heartbeat(self)
        self.gate = ClaimGate(app)  # sheds expired jobs and those matching blackhole rules
        self.pauses = PauseWatch()  # paused queues and kinds, left out of claims
        self.maintenance = Maintenance(app, self.id) if maintenance else None
        self.completed = 0
        self.failed = 0
        self.stale = 0
        self.recorded = 0  # starts recorded by cycles (jobs still running after RECORD_AFTER)
        # Cycles may commit without waiting for the disk when every job type of these queues
        # is at-least-once (a lost cycle only runs its jobs again); see docs/postgres.md.
        mine = [t for t in app.jobs.values() if t.options_.queue in self.queues]
        self._at_least_once = all(t.options_.delivery == "at_least_once" for t in mine)
        self._limited = any(t.options_.limit is not None for t in mine)  # see _ahead

    def lease_margin(self) -> float:
        """How long after a claim or heartbeat was sent its leases surely hold."""
        lease = self.app.config.lease_seconds
        return lease - min(1.0, lease / 10)

    def info(self, running: int) -> WorkerInfo:
        return WorkerInfo(
            self.id, socket.gethostname(), os.getpid(), self.queues, self.started_at, 0.0, running
        )

    # --- control ----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming and finish running jobs within the grace period."""
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        self._stopping = True
        self.executor.halt.set()  # iteration jobs stop at their next yield, their cursor kept
        self._wake.set()

    def fail(self, exc: StoreCorruptError) -> None:
        """Stop for good: the store is damaged, so nothing the worker does can be recorded;
        `run()` raises `exc` once the loop has stopped."""
        if self.fatal is None:
            self.fatal = exc
            log.error("stopping: %s", exc)
        self.stop()

    def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less if the worker is told to stop."""
        deadline = time.monotonic() + seconds
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            self._wake.wait(left)
            self._wake.clear()

    def _on_signal(self, signum: int) -> None:
        """SIGTERM or SIGINT, on the signal relay's thread (worker/_signals.py)."""
        self._signals += 1
        if self._signals == 1:
            log.warning(
                "%s received: finishing running jobs (up to %.0fs); send again to stop at once",
                signal.Signals(signum).name,
                self.grace,
            )
            self.stop()
            # Past grace and cleanup, a call blocked on an unreachable store (a connection
            # attempt, a silent server) must not keep the process: leases recover its jobs.
            overdue = threading.Timer(self.grace + CLEANUP + 1.0, self._overdue)
            overdue.daemon = True
            overdue.start()
            return
        log.warning("second signal: stopping at once")
        self._release_now()
        os._exit(1)

    def _overdue(self) -> None:
        log.error(
            "still stopping %.0fs after the signal (the store does not answer): exiting; "
            "jobs still held are run again once their lease expires",
            self.grace + CLEANUP + 1.0,
        )
        os._exit(1)

    def beat(self, running: int) -> None:
        """Register this worker or refresh its record, unless a hard stop deregistered it."""
        with self._registry:
            if not self._deregistered:
                self.app.store.worker_beat(self.info(running))

    def _release_now(self) -> None:
        # Held until the process exits: a beat under way ends first, none starts after.
        registry = self._registry.acquire(timeout=CLEANUP)
        self._deregistered = True
        try:
            from offload.store import open_store

            store = open_store(self.app.config.url)
            unstarted = self.executor.take_unstarted()
            store.job_release_many([Lease(j.id, j.lease_token) for j in unstarted])
            _put_back(store, self.executor.running_jobs())
            store.worker_remove(self.id)
        except Exception:
            log.debug("could not release jobs on hard stop", exc_info=True)
        if not registry:
            log.debug("a registration was still under way at the hard stop")

    def hint(self) -> None:
        """Jobs may be waiting in the store (from the listener)."""
        self._hinted = True
        self._wake.set()

    def hand_back_isolated(self) -> None:
        """Give isolated jobs that have waited `ISOLATED_PATIENCE` for this process's other
        jobs to finish back to the store when another worker of their queue is idle: it runs
        them at once, while this one would keep them waiting (from the heartbeat thread)."""
        stalled = self.executor.waiting_alone(time.monotonic() - ISOLATED_PATIENCE)
        if not stalled:
            return
        store = self.app.store
        peers = store.worker_list(2 * self.app.config.heartbeat_interval)
        idle = {q for p in peers if p.id != self.id and p.running == 0 for q in p.queues}
        back = self.executor.take_back({j.id for j in stalled if j.queue in idle})
        if back:
            store.job_release_many([Lease(j.id, j.lease_token) for j in back])
            log.info("handed isolated jobs %s back for an idle worker", [j.id for j in back])

    def _on_done(self, outcome: Outcome) -> None:
        self.runtime.ran(outcome.job, outcome.duration)
        avg = self._run_time
        self._run_time = outcome.duration if avg == math.inf else 0.9 * avg + 0.1 * outcome.duration
        with self._acks_lock:
            self._acks.append(outcome)
            waiting = len(self._acks)
            if waiting == 1:
                self._acks_since = time.monotonic()
        # Wake the loop when it has something to do: a claim is due, a batch of acks is
        # ready, or the first ack starts its wait (the loop times it).
        if (
            waiting == 1
            or waiting >= self._ack_batch()
            or self.executor.held() <= self._low_water()
        ):
            self._wake.set()

    def _ack_batch(self) -> int:
        return max(self.concurrency // 2, 1)

    # --- the loop ---------------------------------------------------------------------
    def run(self, install_signals: bool = True) -> None:
        """Run until stopped; returns after a graceful shutdown."""
        if install_signals and threading.current_thread() is threading.main_thread():
            SignalRelay(self._on_signal, signal.SIGTERM, signal.SIGINT)
        store = self._reach_store()
        if store is None:  # stopped before the store ever answered or took writes
            return
        wakeup = self._wakeup = _Wakeup(store.listener(self.queues), self)
        wakeup.start()
        self.heartbeat.start()
        if self.maintenance is not None:
            self.maintenance.start()
        log.info(
            "worker %s running queues %s with %d slots",
            self.id,
            ",".join(self.queues),
            self.concurrency,
        )
        try:
            self._loop()
        finally:
            wakeup.running = False
            wakeup.resume.set()
            self._shutdown()
        if self.fatal is not None:
            raise self.fatal

    def _reach_store(self) -> Store | None:
        """The store once it is checked (`verify_store`: a damaged file raises
        StoreCorruptError here) and this worker is registered in it, trying again while it is
        unavailable (down, starting, out of connections) or refuses writes (a full disk); None
        when stopped first. A store that no retry can cure (a wrong database or user, a
        damaged file) raises."""
        from offload.store import verify_store

        outage = Outage(log, "reaching the store")
        checked = False
        while not self._stopping:
            try:
                if not checked:
                    verify_store(self.app.config.url)
                    checked = True
                store = self.app.store  # opened, and migrated if the app says so
                self.beat(0)
            except (ConfigurationError, StoreCorruptError):
                raise
            except StoreFullError as exc:
                self._pause(self.refusals.refused(exc, "starting"))
                continue
            except StoreError as exc:
                if self.burst:
                    raise  # a one-off drain reports the cause at once instead of waiting
                self._wake.wait(outage.failed(exc))
                continue
            outage.succeeded()
            self.refusals.accepted()
            return store
        return None

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            if self.burst and self._idle():
                if self._found_none and self._drained():
                    log.info("burst: the queues are drained; stopping")
                    self.stop()
                    break
                self._hinted = True  # idle in a burst: look for work now, not at the poll
            again = self._cycle()
            next_timeout = self.executor.check_timeouts()
            if again:
                continue
            wait = (
                self.poll_interval
                if next_timeout is None
                else min(self.poll_interval, next_timeout)
            )
            with self._acks_lock:
                if self._acks:  # acks waiting for company: not longer than ACK_DELAY
                    wait = min(wait, max(self._acks_since + ACK_DELAY - time.monotonic(), 0))
            begun = self.executor.record_due()
            if begun is not None:  # a start to record: at once, or once the job runs on
                wait = min(wait, max(begun + RECORD_AFTER - time.monotonic(), 0))
            self._wake.wait(wait)

    def _idle(self) -> bool:
        """Nothing held, nothing to acknowledge or record: the worker waits for jobs."""
        with self._acks_lock:
            if self._acks:
                return False
        return self.executor.held() == 0

    def _drained(self) -> bool:
        """Burst: whether nothing is left to run now. The last claim found nothing while the
        worker held nothing; jobs that came due meanwhile (a retry whose backoff has passed, a
        scheduled job) are made available first, so the drain takes them too. Jobs due later,
        running elsewhere or held back by a limit another worker holds are left."""
        self._found_none = False
        try:
            promoted = self.app.store.job_promote_due()
        except Exception as exc:
            self._outage.failed(exc, "promoting due jobs")
            return False
        return promoted == 0

    def _ahead(self) -> int:
        """Jobs to hold beyond the slots. Only while jobs are short: for long ones a claim's
        round trip does not matter, and jobs held here would wait while other workers idle.
        None when job types of these queues declare a limit, nor for a while after jobs with a
        limit key came: a held job counts against its key as if it ran (its rate token is
        spent, its concurrency taken) while it waits here. None either when one of them is
        at-most-once: a held one could only start after a round trip to record its start."""
        if self._run_time > SHORT_JOB or self._limited or not self._at_least_once:
            return 0  # at-most-once jobs are never claimed ahead: see the module's docstring
        if time.monotonic() < self._plain_since:
            return 0
        return self.prefetch

    def _low_water(self) -> int:
        """Claim when holding this many jobs or fewer: below half the prefetch buffer."""
        ahead = self._ahead()
        return self.concurrency + ahead // 2 if ahead else self.concurrency - 1

    def _want(self) -> int:
        """How many jobs to claim now (0: none)."""
        if self.claim_paused or self.executor.isolating():
            return 0  # an isolated job runs alone: nothing new until it has run
        held = self.executor.held()
        if held > self._low_water():
            return 0
        if not (
            self._hinted
            or self._claimed_full
            or time.monotonic() - self._claimed_at >= self.poll_interval
        ):
            return 0  # the last claim found the queues empty: wait for a wake-up or the poll
        return min(self.concurrency + self._ahead() - held, self.batch)

    def _cycle(self) -> bool:
        """One turn: acknowledge and claim in one store operation when either is due; True
        when another turn should follow at once."""
        if self.pauses.update(self.app.store):
            self._hinted = True  # something was resumed: its jobs may be waiting
        want = self._want()
        records = self.executor.to_record(time.monotonic() - RECORD_AFTER)
        with self._acks_lock:
            outcomes = self._acks
            due = bool(outcomes) and (
                want > 0
                or bool(records)
                or len(outcomes) >= self._ack_batch()
                or time.monotonic() - self._acks_since >= ACK_DELAY
                or self._stopping
            )
            if due or want > 0 or records:
                self._acks = []
            else:
                outcomes = []
        if not due and want == 0 and not records:
            return False
        claim = None
        if want > 0:
            self._hinted = False
            self._claimed_at = time.monotonic()
            queues, skip_kinds = claim_scope(self.queues, self.pauses.paused)
            claim = ClaimParams(
                queues,
                want,
                self.id,
                self.app.config.lease_seconds,
                # Record no start in the claim: a job lost between the claim and its first
                # line must go back uncharged; at-most-once ones begin once a cycle recorded it.
                start=0,
                skip_kinds=skip_kinds,
            )
        claimed = self._ack_claim(outcomes, claim, records)
        if claimed is None:
            return False
        if claim is None:
            return False
        if not claimed:  # burst: nothing found while nothing was held means drained
            self._found_none = self._idle()
        full = len(claimed) == want
        self._claimed_full = full
        if self._wakeup is not None:
            if full:
                self._wakeup.resume.clear()
            else:
                self._wakeup.resume.set()
        until = self._claimed_at + self.lease_margin()
        jobs = self.gate.apply(claimed)
        for job in jobs:
            if job.limit_key is not None:
                self._plain_since = time.monotonic() + LIMITED_HOLD
            self.executor.submit(job, until)
        return (full or len(jobs) < len(claimed)) and self._want() > 0

    def _ack_claim(
        self,
        outcomes: list[Outcome],
        claim: ClaimParams | None,
        records: Sequence[ClaimedJob] = (),
    ) -> list[ClaimedJob] | None:
        """Write outcomes, record the start of `records` and claim, in one store operation;
        None when it failed (the outcomes are kept for the next turn, the records are made
        again)."""
        # A job that completed itself in a store transaction is acknowledged already.
        acks = [o for o in outcomes if not o.settled]
        done, failed = to_acks(self.app, acks)  # backoff, or Throttled's retry_after
        long = [o for o in acks if o.checkpoint is not None or o.stopped]  # _iteration.py
        for o in outcomes:
            if not o.ok and o.error:
                job = o.job
                error = masked_text(o.error, job.args, job.meta)  # no secret argument's value
                log.info("job %s (%s) attempt %d failed: %s", job.id, job.kind, job.attempt, error)
        durable = not (
            self._at_least_once
            and all(o.job.delivery == "at_least_once" for o in outcomes)
            and all(j.delivery == "at_least_once" for j in records)
        )
        if claim is not None and any(o.job.limit_key is not None for o in outcomes):
            # Adaptive limits learn from these outcomes before the claim reads the limits.
            acked = self._ack_claim(outcomes, None, records)
            return None if acked is None else self._ack_claim([], claim)
        started = [Lease(j.id, j.lease_token) for j in records]
        try:
            if long:  # checkpoints, put-backs and cancels: none for ordinary jobs
                write_long(self.app.store, long)
            got = self.app.store.job_ack_claim(done, failed, claim, durable, started)
        except Exception as exc:
            if isinstance(exc, StoreCorruptError):
                self.fail(exc)  # nothing can be recorded any more: stop, don't retry
                return None
            doing = (
                f"acknowledging {len(outcomes)} jobs"
                if outcomes
                else f"recording {len(records)} jobs' start"
                if records
                else None
            )
            if outcomes:  # kept for the next turn
                with self._acks_lock:
                    self._acks[:0] = outcomes
                    self._acks_since = time.monotonic()
            if isinstance(exc, StoreFullError):
                self._pause(self.refusals.refused(exc, "acknowledging and claiming"))
                return None
            pause = self._outage.failed(exc, doing)
            if not self._stopping:
                self._wake.wait(min(self.poll_interval, pause))
            return None
        self._outage.succeeded()
        self.refusals.accepted()
        if records:
            self.executor.recorded(records, got.not_started)
            self.recorded += len(records)
        self._acked(outcomes, failed, got.completed, got.failed)
        return got.claimed

    def _acked(
        self, outcomes: list[Outcome], failed: list[Failure], a: AckResult, b: AckResult
    ) -> None:
        self.completed += a.applied + sum(o.settled for o in outcomes)
        self.failed += b.applied
        if not outcomes:
            return
        count_failures(self.app, failed, (o.job for o in outcomes), b)
        try:  # adaptive limits learn from what limited jobs said (dispatch/_adaptive.py)
            report_limits(self.app, outcomes)
        except Exception as exc:
            log.warning("reporting to adaptive limits failed (%s); skipped", exc)
        if a.stale or b.stale:
            self.stale += a.stale + b.stale
            log.warning(
                "%d acknowledgements were stale: those jobs had been rescued and "
                "claimed again; the new run decides",
                a.stale + b.stale,
            )

    def _flush(self) -> None:
        with self._acks_lock:
            outcomes, self._acks = self._acks, []
        if outcomes:
            self._ack_claim(outcomes, None)

    def _shutdown(self) -> None:
        if self.fatal is not None:
            self._abandon()
            return
        store = self.app.store
        deadline = (self._stop_at or time.monotonic()) + self.grace
        cleanup = deadline + CLEANUP  # nothing waits on the store past this
        unstarted = self.executor.take_unstarted()
        if unstarted:
            leases = [Lease(j.id, j.lease_token) for j in unstarted]
            within(cleanup, "release unstarted jobs", lambda: store.job_release_many(leases))
        while self.executor.busy() and time.monotonic() < deadline:
            self._flush()
            self.executor.check_timeouts()
            self._wake.wait(min(0.1, max(deadline - time.monotonic(), 0)))
            self._wake.clear()
        within(cleanup, "acknowledge finished jobs", self._flush)
        leftover = self.executor.abandon_running()
        if leftover:
            log.warning(
                "%d jobs still running after %.0fs grace: putting them back",
                len(leftover),
                self.grace,
            )
            within(cleanup, "put back running jobs", lambda: _put_back(store, leftover))
        left = max(cleanup - time.monotonic(), 0.1)
        self.heartbeat.stop(left)
        if self.maintenance is not None:
            self.maintenance.stop(max(cleanup - time.monotonic(), 0.1))
        self.executor.close()
        self.runtime.stop()

        def deregister() -> None:
            self.app.tally.flush(store)
            store.worker_remove(self.id)

        flush = self.runtime.flush  # the last overruns and loop blocks, apart: never in the way
        within(cleanup, "record run-time reports", lambda: flush(store), quiet=True)

        within(cleanup, "deregister the worker", deregister, quiet=True)
        log.info(
            "worker %s stopped: %d completed, %d failed, %d stale, %d starts recorded",
            self.id,
            self.completed,
            self.failed,
            self.stale,
            self.recorded,
        )

    def _abandon(self) -> None:
        """Stop without the store (it is damaged): nothing held can be released or recorded,
        so running jobs are left to end with the process."""
        running = len(self.executor.running_jobs())
        self.executor.take_unstarted()
        self.heartbeat.stop()
        if self.maintenance is not None:
            self.maintenance.stop()
        self.executor.close()
        log.error(
            "worker %s stopped on a damaged store: %d completed, %d failed, %d running jobs "
            "abandoned",
            self.id,
            self.completed,
            self.failed,
            running,
        )


def _put_back(store: Store, jobs: Sequence[ClaimedJob]) -> None:
    """Give up jobs that started but did not finish before the worker stops, as the outcome
    policy says (`offload.outcome.interrupted`): at-least-once ones run again (no attempt
    counted); at-most-once ones may have had effects, so they are dead, never run twice."""
    again, dead = interrupted(jobs)
    store.job_release_many(again)
    store.job_fail_many(dead)
