"""The maintenance leader (catalogue E9): killed, another worker takes over within the
leadership's term; frozen past its term, it steps down when it wakes. Through both, cron fires
once per tick and delayed jobs (which only the leader makes available) still run.

Three worker processes take part in the election; the leadership is a lease row in the store
(`offload/maintenance/_leader.py`) renewed every maintenance interval for `ttl` seconds.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import Offload
from tests.integration._harness import Proc, Procs, all_jobs, wait_until

from ._ledger import Ledger, check, record_figures
from .timeapp import make_app

TIME_APP = "tests.faults.timeapp:app"
TOOK = "took maintenance leadership"
LOST = "lost maintenance leadership"
TERM = 5.0  # the leadership's ttl with the fault apps' maintenance interval (max(5 x 0.2, 5))


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The clock tests' app, with its cron schedule (overrides the fault app of conftest.py)."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


def _electors(procs: Procs) -> tuple[Proc, list[Proc]]:
    """Three workers with cron; the first to lead and the two others."""
    cron = {"OFFLOAD_TEST_CRON": "1"}
    first = procs.worker(concurrency=2, name="first", env=cron, app=TIME_APP)
    first.wait_log(TOOK)
    others = [
        procs.worker(concurrency=2, name=f"other{i}", env=cron, app=TIME_APP) for i in range(2)
    ]
    for other in others:
        other.wait_log("running queues")
    return first, others


def _led(procs: Procs, *candidates: Proc, timeout: float) -> Proc:
    return wait_until(
        lambda: next((p for p in candidates if TOOK in p.log()), None),
        timeout=timeout,
        what="another worker to take maintenance leadership",
        explain=procs.logs,
    )


def _delayed_job_runs(app: Offload, ledger: Ledger, key: str) -> None:
    """A job that only a leader's promoter makes available runs."""
    ledger.enqueue(app, "work", key, call_options={"delay": 0.5})
    wait_until(lambda: ledger.pids("end", key), what=f"the delayed job {key} to run")


def _ticks_once(app: Offload, workdir: Path) -> int:
    ticks = all_jobs(app, kind="tick")
    stamps = [j.meta["tick"] for j in ticks]
    assert sorted(stamps) == sorted(set(stamps)), f"a tick fired twice: {sorted(stamps)}"
    assert all(j.attempt <= 1 and j.crashes == 0 for j in ticks), ticks
    return len(ticks)


def _stop(app: Offload, ledger: Ledger, procs: Procs, workdir: Path) -> None:
    wait_until(lambda: not check(ledger, app, kinds=["work"]).stuck, what="jobs to finish")
    for proc in procs.started:  # drained: graceful shutdown is another test's subject
        if proc.alive():
            proc.signal(signal.SIGCONT)
            proc.signal(signal.SIGKILL)
            proc.wait_exit()


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_a_killed_leader_is_replaced_within_its_term(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path, engine: str
) -> None:
    first, others = _electors(procs)
    _delayed_job_runs(app, ledger, "before")
    first.signal(signal.SIGKILL)
    killed = time.monotonic()
    first.wait_exit()
    _led(procs, *others, timeout=TERM + 5)
    takeover = time.monotonic() - killed
    _delayed_job_runs(app, ledger, "after")
    _stop(app, ledger, procs, workdir)

    ticks = _ticks_once(app, workdir)
    assert sum(TOOK in o.log() for o in others) == 1, "two workers took over"
    verdict = check(ledger, app, kinds=["work"])
    verdict.assert_holds(max_restarted=0)
    record_figures(
        "E9 leader killed", engine, verdict, takeover_ms=round(takeover * 1000), cron_ticks=ticks
    )


@pytest.mark.slow
def test_a_leader_frozen_past_its_term_steps_down_when_it_wakes(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path, engine: str
) -> None:
    first, others = _electors(procs)
    first.signal(signal.SIGSTOP)
    _led(procs, *others, timeout=TERM + 5)
    _delayed_job_runs(app, ledger, "while-frozen")
    first.signal(signal.SIGCONT)
    first.wait_log(LOST, timeout=TERM)
    resumed = first.log().split(LOST, 1)[1]
    _delayed_job_runs(app, ledger, "after")
    _stop(app, ledger, procs, workdir)

    # It stepped down at its first tick awake: it fired no cron and rescued nothing after.
    assert "cron every-second fired" not in resumed and "rescued" not in resumed, resumed
    assert TOOK not in resumed
    ticks = _ticks_once(app, workdir)
    verdict = check(ledger, app, kinds=["work"])
    verdict.assert_holds(max_restarted=0)
    record_figures("E9 leader frozen past its term", engine, verdict, cron_ticks=ticks)
