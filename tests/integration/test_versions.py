"""Version skew in a rolling deploy, with real worker processes on every engine: jobs of an
older version are upgraded and run; jobs of a newer version are put back without using an
attempt, and run once a worker that knows their version arrives (docs/versions.md)."""

from __future__ import annotations

from offload import Offload
from offload.store._contract import JobRecord

from ._harness import Procs, record, state_is, wait_until
from .versionsapp import make_app

APP = "tests.integration.versionsapp:app"


def _refused(app: Offload, job_id: int) -> JobRecord | None:
    """The job once a worker has given it back for its version (and it waits again)."""
    r = record(app, job_id)
    refused = r.state == "retryable" and r.errors and r.errors[-1]["kind"] == "version"
    return r if refused else None


def test_old_jobs_are_upgraded_and_newer_ones_wait_for_a_worker_that_knows_them(
    app: Offload, procs: Procs
) -> None:
    url = app.config.url
    v1, v2, v3 = (make_app(url, version=n) for n in (1, 2, 3))
    try:
        old = v1.job_type("greet").enqueue("Ada Lovelace")  # a producer not yet deployed
        bad = v1.job_type("greet").enqueue("explode")  # its upgrade fails
        same = v2.job_type("greet").enqueue("Alan", "Turing")
        newer = v3.job_type("greet").enqueue("Grace", "Hopper", "!")  # deployed first
        assert [record(app, j.id).version for j in (old, same, newer)] == [1, 2, 3]

        procs.worker(app=APP, env={"OFFLOAD_TEST_VERSION": "2"}, name="worker-v2")

        assert wait_until(state_is(app, old.id, "completed")).result == [2, "hello Ada Lovelace"]
        assert wait_until(state_is(app, same.id, "completed")).result == [2, "hello Alan Turing"]
        failed = wait_until(state_is(app, bad.id, "retryable", "dead"))
        assert failed.errors[0]["error"] == (
            "UpgradeError: greet: upgrading arguments from version 1 to 2 failed: "
            "ValueError: no name to split"
        )
        assert failed.errors[0]["kind"] == "error"  # an attempt used, as any failure

        waiting = wait_until(lambda: _refused(app, newer.id), what="the newer job to be put back")
        assert waiting.attempt == 0  # refusals use no attempt
        assert waiting.errors[-1]["error"] == (
            "NewerVersionError: job has argument version 3, this worker knows up to 2 (greet); "
            "it waits for a worker that knows version 3"
        )
        assert [e["kind"] for e in waiting.errors] == ["version"]  # one entry, however often
        rows = {(r["kind"], r["version"]): r for r in v2.job_versions()}
        assert rows[("greet", 3)]["total"] == 1
        assert rows[("greet", 3)]["declared"] == 2

        procs.worker(app=APP, env={"OFFLOAD_TEST_VERSION": "3"}, name="worker-v3")

        done = wait_until(state_is(app, newer.id, "completed"), what="the newer job to run")
        assert done.result == [3, "hello Grace Hopper!"]
        assert done.attempt == 1  # the one run that counted
        assert [(r["kind"], r["version"]) for r in v3.job_versions() if r["total"]] in (
            [],
            [("greet", 1)],  # the job whose upgrade fails, while it retries
        )
    finally:
        for a in (v1, v2, v3):
            a.close()
