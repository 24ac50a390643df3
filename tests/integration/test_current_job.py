"""`app.transaction()` and `offload.current_job()`: a job completes itself and enqueues what it
causes in one transaction, on every engine, run by `offload.testing` (the real executor)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import offload
from offload import ConfigurationError, Offload, StoreError
from offload.store._contract import JobFilter
from offload.testing import drain, inline


class Boom(Exception):
    pass


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = Offload(store_url)

    @application.job(queue="later")
    def ship(order: int) -> None:
        """A follow-up, in a queue the drains below leave alone."""

    yield application
    application.close()


def follow_ups(app: Offload) -> list[dict[str, Any]]:
    return [r.args for r in app.store.job_list(JobFilter(queue="later"))]


def test_a_job_completes_itself_with_its_follow_up(app: Offload) -> None:
    ship = app.job_type("ship")

    @app.job()
    def charge(order: int) -> str:
        job = offload.current_job()
        assert (job.kind, job.attempt) == ("charge", 1)
        with app.transaction() as tx:
            ship.options(connection=tx).enqueue(order)
            job.complete(tx, result={"charged": order})
        return "not stored: the job completed itself"

    handle = charge.enqueue(7)
    assert drain(app, ["default"]).completed == 1
    done = handle.refresh().record
    assert (done.state, done.result) == ("completed", {"charged": 7})
    assert follow_ups(app) == [{"order": 7}]
    assert app.store.counters().get("stale_acks", 0) == 0  # not acknowledged a second time


def test_a_rolled_back_completion_leaves_the_job_to_its_outcome(app: Offload) -> None:
    ship = app.job_type("ship")

    @app.job(max_attempts=1)
    def charge(order: int) -> str:
        with app.transaction() as tx:
            ship.options(connection=tx).enqueue(order)
            offload.current_job().complete(tx, result="rolled back")
            raise Boom("card declined")

    @app.job()
    def recover(order: int) -> str:
        try:
            with app.transaction() as tx:
                offload.current_job().complete(tx, result="rolled back")
                raise Boom
        except Boom:
            pass
        return "returned"

    failed = charge.enqueue(1)
    returned = recover.enqueue(2)
    result = drain(app, ["default"])
    assert (result.completed, result.dead) == (1, 1)
    assert failed.refresh().record.state == "dead"
    assert "card declined" in failed.record.errors[-1]["error"]
    assert returned.refresh().record.result == "returned"  # acknowledged as usual
    assert follow_ups(app) == []


def test_a_job_completed_already_cannot_be_completed_again(app: Offload) -> None:
    seen: list[str] = []

    @app.job(max_attempts=1)
    def twice() -> None:
        job = offload.current_job()
        with app.transaction() as tx:
            job.complete(tx, result=1)
        try:
            with app.transaction() as tx:
                job.complete(tx, result=2)
        except StoreError as exc:
            seen.append(str(exc))

    handle = twice.enqueue()
    drain(app)
    assert handle.refresh().record.result == 1
    assert len(seen) == 1 and "lease was lost" in seen[0]


def test_current_job_outside_a_job_and_complete_outside_a_transaction_are_refused(
    app: Offload,
) -> None:
    with pytest.raises(ConfigurationError, match="only available while a job runs"):
        offload.current_job()
    errors: list[str] = []

    @app.job()
    def careless() -> None:
        try:
            offload.current_job().complete(app.store)
        except ConfigurationError as exc:
            errors.append(str(exc))

    careless.enqueue()
    assert drain(app).completed == 1
    assert len(errors) == 1 and "app.transaction()" in errors[0]


def test_an_async_job_completes_itself_in_an_async_transaction(app: Offload) -> None:
    ship = app.job_type("ship")

    @app.job()
    async def charge(order: int) -> None:
        job = offload.current_job()
        async with app.transaction_async() as tx:
            await ship.options(connection=tx).enqueue_async(order)
            await job.complete_async(tx, {"charged": order})

    handle = charge.enqueue(3)
    assert drain(app, ["default"]).completed == 1
    assert handle.refresh().record.result == {"charged": 3}
    assert follow_ups(app) == [{"order": 3}]


def test_an_async_transaction_rolls_back_when_its_block_raises(app: Offload) -> None:
    ship = app.job_type("ship")

    async def main() -> None:
        with pytest.raises(Boom):
            async with app.transaction_async() as tx:
                await ship.options(connection=tx).enqueue_async(1)
                raise Boom
        async with app.transaction_async() as tx:
            await app.enqueue_many_async([ship.prepare(2)], connection=tx)

    asyncio.run(main())
    assert follow_ups(app) == [{"order": 2}]


def test_an_app_transaction_inside_another_joins_it(app: Offload) -> None:
    ship = app.job_type("ship")
    with pytest.raises(Boom), app.transaction() as outer:
        with app.transaction() as inner:
            assert inner is outer
            ship.options(connection=inner).enqueue(1)
        raise Boom
    assert follow_ups(app) == []


def test_inline_mode_runs_jobs_enqueued_in_a_transaction_once_it_commits(app: Offload) -> None:
    ran: list[int] = []

    @app.job()
    def note(n: int) -> None:
        ran.append(n)

    with inline(app), app.transaction() as tx:
        note.options(connection=tx).enqueue(1)
        app.enqueue_many([note.prepare(2)], connection=tx)
        assert ran == []  # not committed yet
    assert sorted(ran) == [1, 2]


def test_inside_a_transaction_the_app_reads_and_writes_in_it(store_url: str) -> None:
    # A backlog bound makes admission count (and record) the backlog at the first enqueue:
    # inside the block that write joins the transaction instead of waiting for its lock.
    app = Offload(store_url, max_backlog={"default": 100})

    @app.job()
    def note(n: int) -> None: ...

    try:
        with app.transaction() as tx:
            assert app.store is tx
            job = note.options(connection=tx).enqueue(1)
            assert job.refresh().record.state == "available"  # its own write, seen in it
        assert app.store is not tx
        assert job.refresh().record.args == {"n": 1}
    finally:
        app.close()


def test_an_enqueue_without_connection_inside_a_transaction_joins_it(app: Offload) -> None:
    ship = app.job_type("ship")
    with pytest.raises(Boom), app.transaction():
        ship.enqueue(1)
        raise Boom
    with app.transaction():
        ship.enqueue(2)
    assert follow_ups(app) == [{"order": 2}]
