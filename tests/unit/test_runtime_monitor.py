"""The worker's run-time monitor (offload/worker/_runtime.py): which runs count as overruns, how
they add up per kind until a flush, and the event-loop watchdog naming the job that blocks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from offload import Offload
from offload.store._contract import ClaimedJob
from offload.worker._runtime import LoopWatchdog, RunTimeMonitor, interruptible
from tests._wait import eventually

RELEASE = threading.Event()


def wait_for_test() -> None:
    RELEASE.wait(30)


def claimed(kind: str, job_id: int = 1, queue: str = "q") -> ClaimedJob:
    return ClaimedJob(job_id, kind, queue, {}, {}, 1, 3, "at_least_once", None, 1, 60.0)


@pytest.fixture
def app(tmp_path: Any) -> Iterator[Offload]:
    application = Offload(f"sqlite:///{tmp_path / 'x.db'}", max_run_time=1.0)

    @application.job(queue="q", owner="team-a")
    def plain() -> None: ...

    @application.job(queue="q", max_run_time=None)
    def sliced(cursor: Any = None) -> Iterator[int]:
        yield 1

    @application.job(queue="q")
    async def blocking() -> None:
        wait_for_test()  # blocks the loop (in a helper: the job is found up the stack)

    yield application
    application.close()


def test_only_runs_past_the_limit_of_jobs_that_cannot_stop_count(app: Offload) -> None:
    monitor = RunTimeMonitor(app)
    assert interruptible(app.jobs["sliced"].target) and not interruptible(app.jobs["plain"].target)
    monitor.ran(claimed("plain"), 0.5)  # within the app's default of 1 s
    monitor.ran(claimed("sliced"), 5.0)  # an iteration job runs in slices: never reported
    monitor.ran(claimed("unknown"), 5.0)  # a kind this worker does not declare
    assert monitor.take() == []
    monitor.ran(claimed("plain"), 3.0)
    monitor.ran(claimed("plain", 2), 2.0)
    (report,) = monitor.take()
    assert (report.kind, report.queue, report.owner, report.max_run_time) == (
        "plain",
        "q",
        "team-a",
        1.0,
    )
    assert (report.overruns, report.overrun_seconds, report.worst_seconds) == (2, 5.0, 3.0)
    assert report.overrun_age is not None and report.blocks == 0
    assert monitor.take() == []  # taken: the next flush starts from nothing


def test_a_run_past_its_limit_is_counted_while_it_runs_and_once(app: Offload) -> None:
    monitor = RunTimeMonitor(app)
    job, other = claimed("plain", 1), claimed("plain", 2)
    began = time.monotonic() - 5.0  # five seconds ago, past the 1 s limit
    monitor.check([(job, began), (other, time.monotonic()), (claimed("sliced", 3), began)])
    monitor.check([(job, began), (other, time.monotonic())])  # counted once per run
    (report,) = monitor.take()
    assert (report.overruns, report.kind) == (1, "plain") and report.worst_seconds >= 5.0
    monitor.ran(job, 9.0)  # its end: the whole duration, not a second overrun
    (report,) = monitor.take()
    assert (report.overruns, report.worst_seconds) == (0, 9.0)
    assert 0.0 < report.overrun_seconds <= 4.0
    monitor.ran(other, 0.1)
    assert monitor.take() == []


def test_a_failed_flush_keeps_the_reports_for_the_next(app: Offload) -> None:
    monitor = RunTimeMonitor(app)
    monitor.ran(claimed("plain"), 2.0)

    class Store:
        up = False
        added: list[Any] = []

        def kind_runtime_add(self, reports: Any) -> None:
            if not self.up:
                raise OSError("store down")
            self.added += reports

    store = Store()
    with pytest.raises(OSError):
        monitor.flush(store)  # type: ignore[arg-type]
    monitor.ran(claimed("plain"), 4.0)
    store.up = True
    monitor.flush(store)  # type: ignore[arg-type]
    (kept,) = store.added
    assert (kept.overruns, kept.worst_seconds, kept.overrun_seconds) == (2, 4.0, 6.0)


def test_the_watchdog_names_the_async_job_that_blocks_the_loop(app: Offload) -> None:
    monitor = RunTimeMonitor(app)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    jobs = [claimed("blocking", 7), claimed("plain", 8)]  # held by the worker then
    dog = LoopWatchdog(loop, monitor, lambda: jobs, {"blocking"}, monitor._codes(), 0.2)
    dog.start()
    try:
        future = asyncio.run_coroutine_threadsafe(app.jobs["blocking"].target(), loop)
        eventually(lambda: dog.blocked_since is not None, what="the watchdog to see the block")
        RELEASE.set()
        future.result(30)
        eventually(lambda: monitor._seen, what="the block to be reported")
    finally:
        RELEASE.set()
        dog.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    (report,) = monitor.take()
    assert (report.kind, report.queue, report.blocks) == ("blocking", "q", 1)
    assert report.worst_block >= 0.2 and report.overruns == 0 and report.block_age is not None
