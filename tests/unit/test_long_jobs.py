"""Declaring long jobs and the job context, with drain on a temp SQLite store
(docs/long-jobs.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import offload
from offload import ConfigurationError, InvalidArgumentsError, Offload
from offload.store._contract import JobFilter
from offload.testing import drain


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Offload]:
    application = Offload(f"sqlite:///{tmp_path}/jobs.db")
    yield application
    application.close()


def test_a_generator_is_an_iteration_job_whose_cursor_is_not_an_argument(app: Offload) -> None:
    @app.job()
    def walk(table: str, cursor: int | None = None, step: int = 1) -> Iterator[int]:
        yield 1

    @app.job()
    async def walk_async(cursor: str | None = None) -> AsyncIterator[str]:
        yield "x"

    assert walk.iterates and not walk.is_async
    assert walk_async.iterates and walk_async.is_async
    assert list(walk.signature.sig.parameters) == ["table", "step"]
    with pytest.raises(InvalidArgumentsError):
        walk.enqueue("t", cursor=5)
    with pytest.raises(InvalidArgumentsError):
        walk.enqueue(5)  # annotations are still checked: table is a str


def test_declarations_are_checked(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="needs a parameter `cursor`"):

        @app.job()
        def no_cursor(n: int) -> Iterator[int]:
            yield n

    with pytest.raises(ConfigurationError, match="applies to iteration jobs"):

        @app.job(checkpoint_every=10)
        def plain() -> None: ...

    for i, bad in enumerate((0, -1.0, True, "5s", float("nan"))):
        with pytest.raises(ConfigurationError, match="checkpoint_every"):
            app.job(name=f"bad{i}", checkpoint_every=bad)(lambda cursor=None: (yield))
    with pytest.raises(ConfigurationError, match="max_run_time"):
        app.job(name="slow", max_run_time=0)(lambda: None)
    with pytest.raises(ConfigurationError, match="throttle_on"):
        app.job(name="thr", throttle_on=5)(lambda: None)
    with pytest.raises(ConfigurationError, match="max_run_time"):
        Offload("sqlite:///x.db", max_run_time=-1)
    assert Offload("sqlite:///x.db", max_run_time=timedelta(minutes=5)).config.max_run_time == 300


def test_context_fields_and_current_job_outside_a_job(app: Offload) -> None:
    seen = {}

    @app.job(tenant="{customer}")
    def look(customer: str) -> None:
        job = offload.current_job()
        seen.update(tenant=job.tenant, meta=job.meta, cursor=job.cursor, stop=job.stop_requested)
        job.progress(3, 4)

    look.options(meta={"trace": "abc"}).enqueue("acme")
    assert drain(app).completed == 1
    assert seen == {"tenant": "acme", "meta": {"trace": "abc"}, "cursor": None, "stop": False}
    [record] = app.store.job_list(JobFilter())
    assert (record.progress_done, record.progress_total) == (3, 4)
    with pytest.raises(ConfigurationError, match="only available while a job runs"):
        offload.current_job()


def test_per_call_options_are_stored_with_the_job(app: Offload) -> None:
    @app.job()
    def walk(cursor: int | None = None) -> Iterator[int]:
        yield 1

    job = walk.options(checkpoint_every=2, max_run_time=60).enqueue()
    assert job.refresh().record.meta == {"checkpoint_every": 2, "max_run_time": 60.0}
    with pytest.raises(ConfigurationError, match="throttle_on"):
        walk.options(throttle_on=lambda: True).enqueue()


def test_an_exception_keeps_the_last_cursor_for_the_retry(app: Offload) -> None:
    runs: list[int | None] = []

    @app.job(max_attempts=3, backoff=0, checkpoint_every=100)
    def flaky(cursor: int | None = None) -> Iterator[int]:
        runs.append(cursor)
        for i in range((cursor or 0) + 1, 11):
            if i == 6 and len(runs) == 1:
                raise RuntimeError("item 6 failed once")
            yield i

    job = flaky.enqueue()
    drain(app, with_scheduled=True)
    record = job.refresh().record
    assert (record.state, record.attempt, record.cursor) == ("completed", 2, 10)
    assert runs == [None, 5]  # the retry resumed after the last item done, not from the start


def test_snooze_and_its_checks(app: Offload) -> None:
    @app.job()
    def nap() -> None:
        offload.current_job().snooze(timedelta(hours=1))

    @app.job()
    def bad_nap() -> None:
        offload.current_job().snooze(-1)

    job = nap.enqueue()
    bad = bad_nap.options(max_attempts=1).enqueue()
    drain(app)
    record = job.refresh().record
    assert (record.state, record.attempt, record.errors) == ("scheduled", 0, [])
    assert record.scheduled_at > record.inserted_at + 3000
    assert bad.refresh().state == "dead"
    assert "snooze() takes a non-negative number" in bad.errors[-1]["error"]


def test_a_yield_that_is_not_json_fails_the_attempt(app: Offload) -> None:
    @app.job(max_attempts=1)
    def odd(cursor: object = None) -> Iterator[object]:
        yield 1
        yield object()

    job = odd.enqueue()
    drain(app)
    record = job.refresh().record
    assert record.state == "dead" and record.cursor == 1
    assert "cursor" in record.errors[-1]["error"]


def test_an_async_iteration_job_snoozes_keeping_its_cursor(app: Offload) -> None:
    @app.job()
    async def walk(cursor: int | None = None) -> AsyncIterator[int]:
        for i in range((cursor or 0) + 1, 10):
            if i == 4:
                offload.current_job().snooze(600)
            yield i

    job = walk.enqueue()
    drain(app)
    record = job.refresh().record
    assert (record.state, record.attempt, record.cursor, record.errors) == ("scheduled", 0, 3, [])
