"""One worker process: the fetch loop, batched acknowledgements, heartbeats and shutdown.

The loop's thread owns claiming and acknowledging. A listener thread wakes it when the store
says jobs may be waiting; job slots wake it when they finish. Leases are renewed by a heartbeat
thread; when heartbeats keep failing for a whole lease the worker stops claiming, since its
jobs may already be rescued elsewhere.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from types import FrameType

from offload._app import Offload
from offload._loop import BackgroundLoop
from offload.maintenance import Maintenance
from offload.store._contract import (
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
from offload.worker._shedding import ClaimGate

log = logging.getLogger("offload.worker")


class _Heartbeat(BackgroundLoop):
    name = "heartbeat"

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker.app.config.heartbeat_interval)
        self.worker = worker
        self.last_ok = time.monotonic()

    def tick(self) -> None:
        w = self.worker
        try:
            leases = [Lease(j.id, j.lease_token) for j in w.executor.running_jobs()]
            lost = w.app.store.job_heartbeat(leases, w.app.config.lease_seconds)
            w.app.store.worker_beat(w.info(len(leases)))
        except Exception as exc:
            silent = time.monotonic() - self.last_ok
            log.warning("heartbeat failed (%s); last success %.1fs ago", exc, silent)
            if silent >= w.app.config.lease_seconds and not w.claim_paused:
                log.error("heartbeats failed for a whole lease: this worker stops claiming")
                w.claim_paused = True
            return
        self.last_ok = time.monotonic()
        try:  # failed and retried attempts since the last beat, for the store's totals
            w.app.tally.flush(w.app.store)
        except Exception as exc:
            log.warning("recording failed attempts' totals failed (%s); kept for later", exc)
        if w.claim_paused:
            log.info("heartbeats work again: this worker claims again")
            w.claim_paused = False
        if lost:
            log.warning("lost the lease of jobs %s; their results will be discarded", lost)


class _Wakeup(threading.Thread):
    """Waits on the store's listener and sets the worker's wake event."""

    def __init__(self, listener: Listener, wake: threading.Event) -> None:
        super().__init__(name="offload-listener", daemon=True)
        self.listener = listener
        self.wake = wake
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                if self.listener.wait(0.5):
                    self.wake.set()
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
        grace: float = 30.0,
        poll_interval: float = 1.0,
        maintenance: bool = True,
        worker_id: str | None = None,
    ) -> None:
        self.app = app
        self.queues = list(queues)
        self.concurrency = concurrency
        self.batch = batch or max(concurrency, 1)
        self.grace = grace
        self.poll_interval = poll_interval
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.claim_paused = False
        self._wake = threading.Event()
        self._acks: list[Outcome] = []
        self._acks_lock = threading.Lock()
        self._stopping = False
        self._signals = 0
        self.executor = Executor(app, concurrency, self._on_done)
        self.heartbeat = _Heartbeat(self)
        self.gate = ClaimGate(app)  # sheds expired jobs and those matching blackhole rules
        self.maintenance = Maintenance(app, self.id) if maintenance else None
        self.completed = 0
        self.failed = 0
        self.stale = 0

    def info(self, running: int) -> WorkerInfo:
        return WorkerInfo(
            self.id, socket.gethostname(), os.getpid(), self.queues, self.started_at, 0.0, running
        )

    # --- control ----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming and finish running jobs within the grace period."""
        self._stopping = True
        self._wake.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning(
                "%s received: finishing running jobs (up to %.0fs); send again to stop at once",
                signal.Signals(signum).name,
                self.grace,
            )
            self.stop()
            return
        log.warning("second signal: stopping at once")
        self._release_now()
        os._exit(1)

    def _release_now(self) -> None:
        try:
            from offload.store import open_store

            store = open_store(self.app.config.url)
            unstarted = self.executor.take_unstarted()
            store.job_release_many([Lease(j.id, j.lease_token) for j in unstarted])
            _put_back(store, self.executor.running_jobs())
            store.worker_remove(self.id)
        except Exception:
            log.debug("could not release jobs on hard stop", exc_info=True)

    def _on_done(self, outcome: Outcome) -> None:
        with self._acks_lock:
            self._acks.append(outcome)
        self._wake.set()

    # --- the loop ---------------------------------------------------------------------
    def run(self, install_signals: bool = True) -> None:
        """Run until stopped; returns after a graceful shutdown."""
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        store = self.app.store
        store.worker_beat(self.info(0))
        wakeup = _Wakeup(store.listener(self.queues), self._wake)
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
            self._shutdown()

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self._flush()
            claimed_full = False
            free = self.executor.free_slots()
            if free > 0 and not self.claim_paused:
                limit = min(free, self.batch)
                jobs = self._claim(limit)
                for job in jobs:
                    self.executor.submit(job)
                claimed_full = len(jobs) == limit
            next_timeout = self.executor.check_timeouts()
            if claimed_full and self.executor.free_slots() > 0:
                continue
            wait = (
                self.poll_interval
                if next_timeout is None
                else min(self.poll_interval, next_timeout)
            )
            self._wake.wait(wait)

    def _claim(self, limit: int) -> list[ClaimedJob]:
        try:
            claimed = self.app.store.job_claim(
                ClaimParams(self.queues, limit, self.id, self.app.config.lease_seconds)
            )
            jobs = self.gate.apply(claimed)
            if len(jobs) < len(claimed):
                self._wake.set()  # some were shed: claim again at once
            return jobs
        except Exception as exc:
            log.warning("claim failed (%s); trying again", exc)
            time.sleep(min(self.poll_interval, 0.5))
            return []

    def _flush(self) -> None:
        with self._acks_lock:
            outcomes, self._acks = self._acks, []
        if not outcomes:
            return
        done, failed = to_acks(self.app, outcomes)  # backoff, or Throttled's retry_after
        for o in outcomes:
            if not o.ok and o.error:
                job = o.job
                log.info(
                    "job %s (%s) attempt %d failed: %s", job.id, job.kind, job.attempt, o.error
                )
        try:
            a = self.app.store.job_complete_many(done)
            b = self.app.store.job_fail_many(failed)
        except Exception as exc:
            log.warning("acknowledging %d jobs failed (%s); will retry", len(outcomes), exc)
            with self._acks_lock:
                self._acks[:0] = outcomes
            time.sleep(0.2)
            return
        self.completed += a.applied
        self.failed += b.applied
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

    def _shutdown(self) -> None:
        store = self.app.store
        unstarted = self.executor.take_unstarted()
        if unstarted:
            store.job_release_many([Lease(j.id, j.lease_token) for j in unstarted])
        deadline = time.monotonic() + self.grace
        while self.executor.busy() and time.monotonic() < deadline:
            self._flush()
            self.executor.check_timeouts()
            self._wake.wait(min(0.1, max(deadline - time.monotonic(), 0)))
            self._wake.clear()
        self._flush()
        leftover = self.executor.abandon_running()
        if leftover:
            log.warning(
                "%d jobs still running after %.0fs grace: putting them back",
                len(leftover),
                self.grace,
            )
            _put_back(store, leftover)
        self.heartbeat.stop()
        if self.maintenance is not None:
            self.maintenance.stop()
        self.executor.close()
        try:
            self.app.tally.flush(store)
            store.worker_remove(self.id)
        except Exception:
            log.debug("could not deregister worker", exc_info=True)
        log.info(
            "worker %s stopped: %d completed, %d failed, %d stale",
            self.id,
            self.completed,
            self.failed,
            self.stale,
        )


def _put_back(store: Store, jobs: Sequence[ClaimedJob]) -> None:
    """Give up jobs that started but did not finish before the worker stops: at-least-once
    ones run again (no attempt counted); at-most-once ones may have had effects, so they are
    dead, never run twice."""
    again = [j for j in jobs if j.delivery == "at_least_once"]
    store.job_release_many([Lease(j.id, j.lease_token) for j in again])
    once = [j for j in jobs if j.delivery != "at_least_once"]
    store.job_fail_many(
        [Failure(j.id, j.lease_token, "abandoned: interrupted by worker shutdown") for j in once]
    )
