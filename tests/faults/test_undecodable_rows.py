"""One stored row that cannot be decoded stalls nothing, loses nothing, runs nothing twice.

A job's row is damaged behind the store's back after it was enqueued (a broken JSON text, a
flipped byte, a document of the wrong shape); real worker processes then run the backlog. Every
good job must complete exactly once, and the bad row must end dead on its first claim with an
error that names what could not be decoded, its stored text kept as it was. The catalogue's F1
(docs/reliability.md) is the same fault with each kind of damage.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from typing import Any

import pytest

from offload import Offload
from offload.store._contract import JobFilter, Store
from tests.integration._harness import Procs, wait_until
from tests.store._raw import flip_byte, overwrite, stored, transaction

from ._ledger import Ledger, check, record_figures
from .conftest import APP

Damage = Callable[[Store, int, Any], None]  # (store, job id, connection in a transaction)


def _run_backlog(
    app: Offload, procs: Procs, ledger: Ledger, good: int, damage: Damage, workers: int
) -> tuple[int, list[str]]:
    """With `workers` worker processes waiting, commit `good` jobs and one more in their midst
    whose row `damage` spoils in the same transaction (no worker can claim it before); wait
    until the good jobs have ended and the bad one is dead, and stop the workers. The bad job's
    id and the good jobs' keys."""
    started = [procs.worker(concurrency=4, app=APP, name=f"worker{i}") for i in range(workers)]
    for worker in started:
        worker.wait_log("running queues")
    keys = [f"good-{i}" for i in range(good)]
    order = keys[: good // 2] + ["bad"] + keys[good // 2 :]
    work = app.job_type("work")
    for key in order:
        ledger.note("invoke", key)
    with transaction(app.store) as conn:
        jobs = app.enqueue_many([work.prepare(key=key) for key in order], connection=conn)
        bad = jobs[good // 2].id
        damage(app.store, bad, conn)
    for key, job in zip(order, jobs, strict=True):
        ledger.note("ok", key, job.id)

    def finished() -> bool:
        record = app.store.job_get(bad)
        return len(ledger.keys("end")) >= good and record is not None and record.state == "dead"

    wait_until(
        finished,
        timeout=30,
        what="every good job to end and the bad row to be dead",
        explain=lambda: f"{len(ledger.keys('end'))} ended; bad row: {app.store.job_get(bad)}",
    )
    for worker in started:
        worker.signal(signal.SIGTERM)
    for worker in started:
        assert worker.wait_exit() == 0
    return bad, keys


def _assert_buried(app: Offload, bad: int, *words: str) -> None:
    """The bad row is dead after one claim, with one error entry that names the problem."""
    record = app.store.job_get(bad)
    assert record is not None
    assert record.state == "dead", record
    assert record.attempt == 1, record
    assert len(record.errors) == 1, record.errors
    error = record.errors[0]["error"]
    assert error.startswith("PayloadDecodeError: "), error
    for word in words:
        assert word in error, error
    dead = app.store.job_list(JobFilter(states=["dead"], limit=1000))
    assert [r.id for r in dead] == [bad], "a good job ended dead"


def _damage(engine: str) -> Damage:
    """Broken JSON where the engine can hold it (SQLite's TEXT); PostgreSQL's jsonb only holds
    valid JSON, so there the damage is a document of the wrong shape."""
    value = '{"broken' if engine == "sqlite" else "[1, 2, 3]"
    return lambda store, job_id, conn: overwrite(store, job_id, "args", value, conn)


def test_one_undecodable_row_stalls_no_worker(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    bad, keys = _run_backlog(app, procs, ledger, 200, _damage(engine), workers=2)
    verdict = check(ledger, app, succeeds=lambda key: key != "bad")
    verdict.assert_holds()
    assert set(verdict.ended) == set(keys), "a good job never ran, or the bad one did"
    words = ("arguments", "not valid JSON") if engine == "sqlite" else ("arguments", "array")
    _assert_buried(app, bad, *words)
    assert app.store.counters().get("undecodable") == 1
    record_figures("undecodable row among 200 jobs, 2 workers", engine, verdict)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_flipped_byte_in_a_row_stalls_no_worker(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    # `{"key":"bad"}` with its 9th byte (the `b`) made 0xFF: not UTF-8 any more, and sqlite3
    # refuses to fetch the TEXT column at all.
    flip = functools.partial(flip_byte, column="args", offset=8)
    bad, keys = _run_backlog(app, procs, ledger, 200, lambda s, i, c: flip(s, i, conn=c), workers=2)
    verdict = check(ledger, app, succeeds=lambda key: key != "bad")
    verdict.assert_holds()
    assert set(verdict.ended) == set(keys)
    _assert_buried(app, bad, "arguments", "not valid UTF-8")
    assert stored(app.store, bad, "args") == b'{"key":"\xffad"}', "the raw payload was not kept"
    record_figures("flipped byte in a row among 200 jobs, 2 workers", engine, verdict)
