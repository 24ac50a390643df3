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
    for k in range(1, 5):
        worker = procs.worker(concurrency=2, maintenance=maintenance, app=APP)
        wait_until(
            lambda k=k: len(longapp.processed("all")) >= k * 18_000,
            what=f"interruption {k}: rows processed",
            explain=lambda: (record(app, job.id), worker.tail()),
        )
        worker.signal(sig)
        if sig == signal.SIGTERM:
            assert worker.wait_exit() == 0
            back = record(app, job.id)
            assert (back.state, back.attempt) == ("available", 0), "an attempt was used"
            assert back.cursor is not None and back.cursor >= k * 18_000
        else:
            worker.wait_exit()
    last = procs.worker(concurrency=2, maintenance=maintenance, app=APP)
    done = wait_until(state_is(app, job.id, "completed"), explain=last.tail)
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


def test_sigkill_four_times_is_rescued_and_resumes(long_app: Offload, procs: Procs) -> None:
    _interrupted_run(long_app, procs, "walk_async", signal.SIGKILL, maintenance=False)
