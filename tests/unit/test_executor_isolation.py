"""The executor's crash accounting: which starts the worker's cycle must record, jobs that wait
for that record before they begin (at-most-once jobs held in the buffer, isolated jobs), and
isolated jobs running alone."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offload import Offload
from offload.store._contract import ClaimedJob
from offload.worker import Executor, Outcome
from tests._wait import eventually


class Jobs:
    """Job `n` runs until `release(n)`; the order of starts and the most running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gates: dict[int, threading.Event] = {}
        self.started: list[int] = []
        self.running: set[int] = set()
        self.together: list[set[int]] = []  # what ran beside each job as it started
        self.events: list[str] = []  # job starts and the test's own marks, in order

    def gate(self, n: int) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(n, threading.Event())

    def run(self, n: int) -> int:
        with self.lock:
            self.started.append(n)
            self.events.append(f"start {n}")
            self.together.append(set(self.running))
            self.running.add(n)
        self.gate(n).wait(10)
        with self.lock:
            self.running.discard(n)
        return n

    def mark(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def release(self, *ns: int) -> None:
        for n in ns:
            self.gate(n).set()


@pytest.fixture
def jobs() -> Jobs:
    return Jobs()


@pytest.fixture
def app(tmp_path: Path, jobs: Jobs) -> Offload:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.job()
    def work(n: int) -> int:
        return jobs.run(n)

    return app


@pytest.fixture
def wakes() -> list[int]:
    return []


@pytest.fixture
def done() -> list[Outcome]:
    return []


@pytest.fixture
def ex(app: Offload, wakes: list[int], done: list[Outcome]) -> Iterator[Executor]:
    executor = Executor(app, 2, done.append, lambda: wakes.append(1))
    yield executor
    executor.close()


def _job(
    n: int, *, started: bool = False, isolated: bool = False, delivery: str = "at_least_once"
) -> ClaimedJob:
    return ClaimedJob(
        n,
        "work",
        "default",
        {"n": n},
        {},
        1,
        3,
        delivery,
        None,
        7,
        60.0,
        started=started,
        isolated=isolated,
    )


def _wait(cond: Callable[[], object], limit: float = 5.0) -> None:
    eventually(cond, timeout=limit, interval=0.005)


def test_begun_jobs_are_recorded_once_they_have_run_a_while(ex: Executor, jobs: Jobs) -> None:
    ex.submit(_job(1))
    ex.submit(_job(2, started=True))  # the claim recorded it
    _wait(lambda: len(jobs.started) == 2)
    assert ex.to_record(time.monotonic() - 60) == []  # none ran that long yet
    assert [j.id for j in ex.to_record(math.inf)] == [1]
    begun = ex.record_due()
    assert begun is not None and begun <= time.monotonic()
    ex.recorded(ex.to_record(math.inf))
    assert ex.to_record(math.inf) == [] and ex.record_due() is None
    jobs.release(1, 2)
    _wait(lambda: ex.held() == 0)


def test_a_job_that_ends_unrecorded_is_not_reported(
    ex: Executor, jobs: Jobs, done: list[Outcome]
) -> None:
    jobs.release(1)
    ex.submit(_job(1))
    _wait(lambda: len(done) == 1)
    assert ex.to_record(math.inf) == [] and ex.record_due() is None


def test_an_at_most_once_job_held_waits_for_its_record_to_begin(
    ex: Executor, jobs: Jobs, wakes: list[int]
) -> None:
    ex.submit(_job(1, delivery="at_most_once"))
    assert jobs.started == [] and wakes == [1]
    assert ex.record_due() == -math.inf
    assert ex.startable() == 0
    [job] = ex.to_record(time.monotonic())
    jobs.mark("recorded")
    ex.recorded([job])
    _wait(lambda: jobs.started == [1])
    assert jobs.events == ["recorded", "start 1"]  # it began only once its start was recorded
    jobs.release(1)
    _wait(lambda: ex.held() == 0)


def test_a_held_job_whose_lease_was_lost_is_dropped_not_begun(ex: Executor, jobs: Jobs) -> None:
    ex.submit(_job(1, delivery="at_most_once"))
    ex.submit(_job(2))
    [job] = ex.to_record(time.monotonic())
    ex.recorded([job], lost=[1])
    _wait(lambda: jobs.started == [2])
    jobs.release(2)
    _wait(lambda: ex.held() == 0)
    assert jobs.started == [2]


def test_an_isolated_job_waits_for_the_others_then_runs_alone(
    ex: Executor, jobs: Jobs, wakes: list[int], done: list[Outcome]
) -> None:
    ex.submit(_job(1))
    ex.submit(_job(2))
    _wait(lambda: len(jobs.started) == 2)
    ex.submit(_job(3, isolated=True))
    ex.submit(_job(4))
    assert ex.isolating() and ex.startable() == 0
    jobs.release(1)
    _wait(lambda: len(done) == 1)  # job 1 has ended and given its slot back
    # A slot is free, but nothing new starts while an isolated job waits for the other.
    # Jobs 1 and 2 start on threads of their own, in either order.
    assert sorted(jobs.started) == [1, 2] and wakes == [] and ex.startable() == 0
    assert [j.id for j in ex.waiting_alone(math.inf)] == [3]
    jobs.release(2)
    _wait(lambda: wakes == [1])  # alone now: its start is recorded before it begins
    assert [j.id for j in ex.to_record(time.monotonic())] == [3]
    assert sorted(jobs.started) == [1, 2]
    ex.recorded(ex.to_record(time.monotonic()))
    _wait(lambda: jobs.started[2:] == [3])
    jobs.release(3)
    _wait(lambda: jobs.started[2:] == [3, 4])
    assert jobs.together[2] == set()  # job 3 ran alone
    assert jobs.together[3] == set()  # job 4 waited until the isolated job had ended
    assert not ex.isolating()
    jobs.release(4)
    _wait(lambda: ex.held() == 0)


def test_an_isolated_job_the_claim_recorded_runs_alone_at_once(ex: Executor, jobs: Jobs) -> None:
    ex.submit(_job(1, isolated=True, started=True))
    ex.submit(_job(2))
    _wait(lambda: jobs.started == [1])
    jobs.release(1, 2)
    _wait(lambda: ex.held() == 0)
    assert jobs.started == [1, 2]
    assert jobs.together == [set(), set()]  # job 2 waited until job 1 had ended


def test_an_isolated_job_can_be_taken_back_while_it_waits(ex: Executor, jobs: Jobs) -> None:
    ex.submit(_job(1))
    _wait(lambda: jobs.started == [1])
    ex.submit(_job(2, isolated=True))
    ex.submit(_job(3))
    assert [j.id for j in ex.take_back({2})] == [2]
    assert not ex.isolating()
    _wait(lambda: jobs.started == [1, 3])  # the others go on at once
    jobs.release(1, 3)
    _wait(lambda: ex.held() == 0)


def test_unstarted_isolated_jobs_are_taken_back_at_shutdown(ex: Executor, jobs: Jobs) -> None:
    ex.submit(_job(1))
    ex.submit(_job(2))
    _wait(lambda: len(jobs.started) == 2)
    ex.submit(_job(3, isolated=True))
    jobs.release(1, 2)
    _wait(lambda: ex.record_due() == -math.inf)  # 3 waits for its record, alone
    assert [j.id for j in ex.take_unstarted()] == [3]
    assert ex.held() == 0 and not ex.isolating() and ex.startable() == 2
