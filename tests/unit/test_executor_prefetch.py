"""The executor's buffer of prefetched jobs: held beyond the slots, started as slots free up,
never more running than the slots, and never started once their lease may have run out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from offload import Offload
from offload.store._contract import ClaimedJob
from offload.worker import Executor, Outcome
from tests._wait import eventually


@pytest.fixture
def app(tmp_path: Path) -> Offload:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")
    gate = threading.Event()
    state = {"running": 0, "most": 0, "ran": [], "beside": []}
    lock = threading.Lock()

    @app.job()
    def work(n: int) -> int:
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        gate.wait(10)
        with lock:
            state["running"] -= 1
            state["ran"].append(n)
        return n

    @app.job()
    async def awork(n: int) -> int:
        with lock:
            state["beside"].append(state["running"])  # sync jobs running as it starts
        return n

    app.gate, app.state = gate, state  # type: ignore[attr-defined]
    return app


def _job(n: int, kind: str = "work") -> ClaimedJob:
    return ClaimedJob(n, kind, "default", {"n": n}, {}, 1, 3, "at_least_once", None, 7, 60.0)


def _wait(cond: Callable[[], object], limit: float = 5.0) -> None:
    eventually(cond, timeout=limit, interval=0.005)


def test_jobs_beyond_the_slots_wait_and_run_in_order(app: Offload) -> None:
    done: list[Outcome] = []
    ex = Executor(app, 2, done.append)
    try:
        for n in range(1, 7):
            ex.submit(_job(n))
        assert ex.held() == 6
        _wait(lambda: app.state["running"] == 2)  # type: ignore[attr-defined]
        assert {j.id for j in ex.running_jobs()} == set(range(1, 7))  # heartbeats keep all
        app.gate.set()  # type: ignore[attr-defined]
        _wait(lambda: len(done) == 6)
        assert app.state["most"] == 2  # type: ignore[attr-defined]
        assert [o.result for o in done if o.ok] == app.state["ran"]  # type: ignore[attr-defined]
        assert ex.held() == 0
    finally:
        ex.close()


def test_a_waiting_job_whose_lease_ran_out_is_not_started(app: Offload) -> None:
    done: list[Outcome] = []
    ex = Executor(app, 1, done.append)
    try:
        ex.submit(_job(1))
        ex.submit(_job(2), lease_until=time.monotonic())  # waits; its lease runs out meanwhile
        ex.submit(_job(3))
        ex.submit(_job(4))
        ex.renew(time.monotonic(), lost={4})  # the heartbeat says 4 is no longer ours
        app.gate.set()  # type: ignore[attr-defined]
        _wait(lambda: ex.held() == 0)
        assert sorted(app.state["ran"]) == [1, 3]  # type: ignore[attr-defined]
        assert sorted(o.job.id for o in done) == [1, 3]
        assert ex.dropped == 2
    finally:
        ex.close()


def test_unstarted_jobs_are_taken_back_for_release(app: Offload) -> None:
    ex = Executor(app, 1, lambda o: None)
    try:
        for n in range(1, 5):
            ex.submit(_job(n))
        _wait(lambda: app.state["running"] == 1)  # type: ignore[attr-defined]
        assert sorted(j.id for j in ex.take_unstarted()) == [2, 3, 4]
        assert [j.id for j in ex.running_jobs()] == [1]
        app.gate.set()  # type: ignore[attr-defined]
        _wait(lambda: ex.held() == 0)
        assert app.state["ran"] == [1]  # type: ignore[attr-defined]
    finally:
        ex.close()


def test_async_jobs_share_the_slots(app: Offload) -> None:
    done: list[Outcome] = []
    ex = Executor(app, 1, done.append)
    try:
        ex.submit(_job(1))
        ex.submit(_job(2, "awork"))
        ex.submit(_job(3, "awork"))
        app.gate.set()  # type: ignore[attr-defined]
        _wait(lambda: len(done) == 3)
        assert [o.job.id for o in done] == [1, 2, 3]
        assert app.state["beside"] == [0, 0]  # type: ignore[attr-defined]  # they waited for its slot
    finally:
        ex.close()
