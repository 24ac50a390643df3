"""Backpressure on enqueue (catalogue H2): producers outpace the workers of a queue bounded
at `BOUND` available jobs. Past the bound an enqueue is refused with `OverloadedError` (HTTP
503 with `Retry-After`, offload's answer to overload; a store that cannot write answers 503
too) and nothing of it is stored; every job that was accepted runs, and the store's `refused`
counter equals the refusals the producers saw: nothing is buffered and dropped silently.

A bound is a shedding threshold, not an exact quota: depths are read at most once a second
(here every 0.1 s) and recounted by the leader every maintenance interval, so a burst may
overshoot it by what the producers enqueue meanwhile (`offload/app/_admission.py`).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import Offload
from offload.store._policy import REFUSED_COUNTER
from tests.integration._harness import Procs, counter, wait_until

from ._ledger import Ledger, check, record_figures
from .pressureapp import make_app

PRESSURE_APP = "tests.faults.pressureapp:app"


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The bounded app (overrides the fault app of conftest.py)."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_producers_past_a_backlog_bound_are_refused_and_nothing_accepted_is_lost(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path, engine: str
) -> None:
    producers, per_producer = 3, 300
    worker = procs.worker(concurrency=2, app=PRESSURE_APP)
    worker.wait_log("running queues")
    names = [f"p{i}" for i in range(producers)]
    started = [
        procs.start(["-m", "tests.faults._pressure", n, str(per_producer)], name=f"producer-{n}")
        for n in names
    ]
    for producer in started:
        assert producer.wait_exit(timeout=120) == 0, producer.tail()
    errors = [(workdir / f"errors-{n}").read_text() for n in names]
    assert errors == [""] * producers, errors
    refused = sum(int((workdir / f"refused-{n}").read_text()) for n in names)

    wait_until(
        lambda: not check(ledger, app).stuck,
        timeout=120,
        what="every accepted job to run",
        explain=procs.logs,
    )
    worker.signal(signal.SIGKILL)  # drained: nothing of its own is left to put back
    worker.wait_exit()

    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    failed = len(ledger.keys("fail"))
    assert 0 < refused == failed, (refused, failed)
    assert len(ledger.keys("info")) == 0
    assert counter(app, REFUSED_COUNTER) == refused
    assert len(verdict.acknowledged) + refused == producers * per_producer
    record_figures(f"H2 {producers} producers past a bound of 50", engine, verdict, refused=refused)
