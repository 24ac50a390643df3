"""Long jobs in real worker processes, on both engines (docs/long-jobs.md): an iteration job
over 100,000 rows of a real table survives four SIGTERMs and four SIGKILLs, resuming from its
stored cursor; time slices, cancel of a running job, snooze and throttle_on."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import Offload

from . import longapp
from ._harness import Procs, record, state_is, wait_until

APP = "tests.integration.longapp:app"
ROWS = 100_000


@pytest.fixture
def long_app(store_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Offload]:
    monkeypatch.setenv("OFFLOAD_TEST_DIR", str(workdir))
    app = longapp.make_app(store_url)
    app.store.migrate()
    yield app
    app.close()


def _interrupted_run(
    app: Offload, procs: Procs, kind: str, sig: signal.Signals, maintenance: bool
) -> None:
    """Run `kind` over ROWS rows, interrupting its worker with `sig` four times midway."""
    longapp.make_rows(ROWS)
    job = app.enqueue(kind, key="all")
    if not maintenance:
        procs.worker(queues="maintenance-only", concurrency=1, name="maintainer", app=APP)
    worker = procs.worker(concurrency=2, maintenance=maintenance, app=APP)
    stopped = []
    for k in range(1, 5):
        wait_until(
            lambda k=k: len(longapp.processed("all")) >= k * 18_000,
            what=f"interruption {k}: rows processed",
            explain=lambda: (record(app, job.id), worker.tail()),
        )
        worker.signal(sig)
        stopped.append(worker)
        # The next worker starts at once: it takes the job once it is back (put back by the
        # one stopping, or rescued after the killed one's lease expired).
        worker = procs.worker(concurrency=2, maintenance=maintenance, app=APP)
    done = wait_until(state_is(app, job.id, "completed"), explain=worker.tail)
    for old in stopped:
        code = old.wait_exit()
        if sig == signal.SIGTERM:
            assert code == 0
            assert "putting them back" not in old.log(), "it stopped at a yield within the grace"
    assert done.attempt == 1
    assert done.progress_done == ROWS

    seen = longapp.processed("all")
    assert set(seen) == set(range(1, ROWS + 1)), "a row was never processed"
    twice = sum(n - 1 for n in Counter(seen).values())
    # At most one checkpoint's worth of rows runs again per interruption.
    assert twice <= 4 * longapp.CHECKPOINT_EVERY, twice
    if sig == signal.SIGTERM:
        assert twice == 0, "a worker told to stop kept its cursor exactly"


def test_sigterm_four_times_resumes_from_the_cursor(long_app: Offload, procs: Procs) -> None:
    _interrupted_run(long_app, procs, "walk", signal.SIGTERM, maintenance=True)


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_sigkill_four_times_is_rescued_and_resumes(long_app: Offload, procs: Procs) -> None:
    _interrupted_run(long_app, procs, "walk_async", signal.SIGKILL, maintenance=False)


@pytest.mark.parametrize("kind", ["count_up", "count_up_async"])
def test_a_slice_over_max_run_time_is_put_back_and_continues(
    long_app: Offload, procs: Procs, kind: str
) -> None:
    procs.worker(concurrency=2, app=APP)
    # 200 items of 5 ms: about a second, in slices of at most 0.2 s.
    job = long_app.call(kind, max_run_time=0.2).enqueue(key="sliced", n=200)
    done = wait_until(state_is(long_app, job.id, "completed"))
    assert done.attempt == 1, "a slice used an attempt"
    seen = longapp.processed("sliced")
    assert sorted(set(seen)) == list(range(1, 201))
    assert len(seen) == 200, "a slice ran an item twice"
    assert done.meta["max_run_time"] == 0.2


@pytest.mark.parametrize("kind", ["count_up", "count_up_async"])
def test_cancel_of_a_running_iteration_job(long_app: Offload, procs: Procs, kind: str) -> None:
    procs.worker(concurrency=2, app=APP)
    job = long_app.enqueue(kind, key="cancelled", n=100_000)
    wait_until(lambda: len(longapp.processed("cancelled")) >= 20)
    assert wait_until(lambda: record(long_app, job.id).progress_done)
    assert job.cancel() is True
    ended = wait_until(state_is(long_app, job.id, "cancelled"))
    seen = len(longapp.processed("cancelled"))
    assert seen < 100_000
    assert ended.cursor is not None and ended.cursor <= seen
    assert ended.finished_at is not None and ended.stop_request is None
    assert job.cancel() is False  # finished: nothing to cancel


def test_snooze_runs_the_job_again_later_without_an_attempt(
    long_app: Offload, procs: Procs
) -> None:
    procs.worker(concurrency=2, app=APP)
    job = long_app.enqueue("snoozer", key="nap")
    done = wait_until(state_is(long_app, job.id, "completed"))
    assert (done.result, done.attempt, done.errors) == ("woke", 1, [])


def test_throttle_on_puts_the_job_back_with_a_delay(
    long_app: Offload, procs: Procs, workdir: Path
) -> None:
    procs.worker(concurrency=2, app=APP)
    job = long_app.enqueue("gated", key="gated", n=200)  # 10 ms an item
    wait_until(lambda: len(longapp.processed("gated")) >= 5)
    (workdir / "gate").touch()
    # throttle_on is asked at most once a second: the job is put back, scheduled 0.2 s later
    wait_until(state_is(long_app, job.id, "scheduled"), what="the throttled job to wait")
    throttled_at = len(longapp.processed("gated"))
    (workdir / "gate").unlink()
    done = wait_until(state_is(long_app, job.id, "completed"))
    assert done.attempt == 1
    seen = longapp.processed("gated")
    assert seen == list(range(1, 201)), "resumed after its cursor"
    assert 5 <= throttled_at < 200
