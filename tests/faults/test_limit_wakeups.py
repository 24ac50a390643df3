"""Jobs held back by a limit start as soon as their key allows, not at the worker's next poll:
a worker polling once a minute still runs a mutex key's jobs one after another and a rate
limit's jobs token after token, on every engine (issue 10, item 8)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from offload import Offload
from tests.integration._harness import Procs, wait_until

from ._ledger import Ledger, check, record_figures
from .pgapp import make_app

PGAPP = "tests.faults.pgapp:app"
JOBS = 8  # of each limited type


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


def test_limited_jobs_start_when_their_key_allows_without_waiting_for_a_poll(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    mutex = [f"mutex-{i}" for i in range(JOBS)]
    rated = [f"rated-{i}" for i in range(JOBS)]
    for key in mutex:
        ledger.enqueue(app, "mutex", key)
    for key in rated:
        ledger.enqueue(app, "rated", key)
    # A poll of a minute: each job after the first of its key must be woken to start.
    worker = procs.worker(
        "--poll-interval", "60", queues="limited", concurrency=4, maintenance=False, app=PGAPP
    )
    wait_until(
        lambda: set(ledger.keys("end")) >= {*mutex, *rated},
        timeout=30,
        what="every limited job to run (a minute's poll would not be in time)",
        explain=worker.tail,
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0, worker.tail()
    holder = None
    for line in ledger.lines():
        if line.key.startswith("mutex"):
            if line.event == "start":
                assert holder is None, f"{line.key} started while {holder} held the key"
                holder = line.key
            elif line.event == "end":
                holder = None
    verdict = check(ledger, app)
    verdict.assert_holds()
    record_figures("limited jobs woken without polling (item 8)", engine, verdict)
