"""A backlog with one damaged row in its midst, run by real worker processes (the fault tests
of undecodable rows, F1 and G1).

The jobs and the damage commit in one transaction while the workers wait, so no worker can
claim the row before it is damaged, and every claim may take it along with good jobs.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from offload import Offload
from offload.store._contract import JobFilter, Store
from tests.integration._harness import Procs, wait_until
from tests.store._raw import transaction

from ._ledger import Ledger
from .conftest import APP

Damage = Callable[[Store, int, Any], None]  # (store, job id, connection in a transaction)
BAD = "bad"  # the ledger key of the damaged job


def run_backlog(
    app: Offload,
    procs: Procs,
    ledger: Ledger,
    good: int,
    damage: Damage,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> tuple[int, list[str]]:
    """With `workers` worker processes waiting, commit `good` `work` jobs and one more in their
    midst whose row `damage` spoils; wait until the good jobs have ended and the bad one is
    dead, and stop the workers. The bad job's id and the good jobs' keys."""
    started = [
        procs.worker(concurrency=4, app=APP, name=f"worker{i}", env=env) for i in range(workers)
    ]
    for worker in started:
        worker.wait_log("running queues")
    keys = [f"good-{i}" for i in range(good)]
    order = keys[: good // 2] + [BAD] + keys[good // 2 :]
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


def assert_buried(app: Offload, bad: int, *words: str) -> str:
    """The bad row is dead after one claim, with one error entry, PayloadDecodeError naming
    the problem (each of `words`), and no other job is dead. Its error."""
    record = app.store.job_get(bad)
    assert record is not None
    assert record.state == "dead", record
    assert record.attempt == 1, record
    assert len(record.errors) == 1, record.errors
    error = str(record.errors[0]["error"])
    assert error.startswith("PayloadDecodeError: "), error
    for word in words:
        assert word in error, error
    dead = app.store.job_list(JobFilter(states=["dead"], limit=1000))
    assert [r.id for r in dead] == [bad], "a good job ended dead"
    return error
