"""A job type no running worker knows (catalogue F2), as in a deploy that ships producers
first: its jobs are never dropped. A worker that does not know the type fails the attempt with
`UnknownJobError` and retries it a minute later (`offload/outcome.py`), up to the job's
`max_attempts`, then dead; once a worker that knows the type is deployed, the jobs run.

An application that does not declare a type refuses to enqueue it (`UnknownJobError`), so
only a producer that declares it (the newer deploy) or an HTTP server that accepts it
(`--external-kind`) can enqueue such jobs.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from offload import Offload, UnknownJobError
from tests.integration._harness import Procs, all_jobs, wait_until

from ._ledger import Ledger, check, record_figures
from .deliveryapp import make_app

DELIVERY_APP = "tests.faults.deliveryapp:app"
UNKNOWN_KIND_BACKOFF = 60.0


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The older deploy, without `v2_thing` (overrides the fault app of conftest.py)."""
    application = make_app(store_url, v2=False)
    application.store.migrate()
    yield application
    application.close()


@pytest.fixture
def newer(store_url: str, app: Offload) -> Iterator[Offload]:
    """The newer deploy's producer, which declares `v2_thing`."""
    application = make_app(store_url, v2=True)
    yield application
    application.close()


def test_jobs_of_a_type_no_worker_knows_wait_for_a_worker_that_does(
    app: Offload, newer: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    with pytest.raises(UnknownJobError, match="v2_thing"):
        app.enqueue("v2_thing", key="refused")
    old = procs.worker(concurrency=2, name="old", app=DELIVERY_APP)
    keys = [f"v2-{i}" for i in range(3)]
    for key in keys:
        ledger.enqueue(newer, "v2_thing", key)
    ledger.enqueue(app, "work", "known")  # the old worker goes on with what it knows

    def waiting() -> bool:
        jobs = all_jobs(app, kind="v2_thing")
        return len(jobs) == 3 and all(j.state == "retryable" for j in jobs)

    wait_until(waiting, what="the unknown jobs to wait for a retry", explain=procs.logs)
    for job in all_jobs(app, kind="v2_thing"):
        assert job.attempt == 1 and job.crashes == 0
        [error] = job.errors
        assert error["error"].startswith("UnknownJobError") and "v2_thing" in error["error"]
        assert job.scheduled_at - error["at"] == pytest.approx(UNKNOWN_KIND_BACKOFF, abs=1)
    assert all(not ledger.pids("start", key) for key in keys)
    wait_until(lambda: ledger.pids("end", "known"), what="a known job to run meanwhile")

    # The newer deploy replaces the older one; an operator runs the waiting jobs now
    # (`offload jobs retry ID`) rather than within the minute.
    old.signal(signal.SIGKILL)
    old.wait_exit()
    new = procs.worker(concurrency=2, name="new", app=DELIVERY_APP, env={"OFFLOAD_TEST_V2": "1"})
    for job in all_jobs(app, kind="v2_thing"):
        assert app.store.job_retry(job.id)
    wait_until(lambda: all(ledger.pids("end", k) for k in keys), what="the jobs to run")
    wait_until(lambda: not check(ledger, app).stuck, what="their outcomes to be stored")
    new.signal(signal.SIGKILL)
    new.wait_exit()

    for job in all_jobs(app, kind="v2_thing"):
        assert (job.state, job.attempt, job.result) == ("completed", 2, new.pid)
    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    record_figures("F2 a type no worker knows", engine, verdict)
