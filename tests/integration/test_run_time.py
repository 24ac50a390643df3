"""Max run time reported for jobs that cannot be interrupted, and the blocked event loop, with a
real worker process on every engine: the store's per-kind reports, `offload stats --json`,
`/metrics`, the dashboard's run-time page, and the de-prioritized ordering of new jobs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.server import create_app
from offload.store._contract import ClaimParams
from offload.store._runtime import KindRunTime

from ._harness import REPO, Procs, wait_until
from .runtimeapp import QUEUE, make_app


@pytest.fixture
def rt_app(store_url: str) -> Iterator[Offload]:
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


def reports(app: Offload) -> dict[str, KindRunTime]:
    return {r.kind: r for r in app.store.kind_runtimes()}


def test_overruns_and_loop_blocks_are_reported_and_deprioritized(
    rt_app: Offload, procs: Procs
) -> None:
    app = rt_app
    assert reports(app) == {}
    worker = procs.worker(app="tests.integration.runtimeapp:app", queues=QUEUE, concurrency=2)
    running = app.job_type("report").enqueue(1)
    app.job_type("blocker").enqueue(2)

    def both() -> dict[str, KindRunTime] | None:
        got = reports(app)
        ok = got.get("report") and got["report"].overruns and got.get("blocker")
        return got if ok and got["blocker"].blocks else None

    got = wait_until(both, what="the overrun and the loop block in the store", explain=worker.tail)
    report, blocker = got["report"], got["blocker"]
    assert (report.queue, report.owner, report.max_run_time) == (QUEUE, "analytics", 0.2)
    assert report.worst_seconds > 0.2 and report.typical_seconds is not None
    assert report.last_overrun_at is not None and report.blocks == 0
    assert running.refresh().record.state == "running"  # reported while it still runs
    assert (blocker.owner, blocker.overruns) == ("search", 0)  # 1.5 s is within its 30 s
    assert blocker.worst_block >= 0.5 and blocker.last_block_at is not None
    worker.wait_log("event loop was blocked")
    assert "blocker" in [ln for ln in worker.log().splitlines() if "event loop" in ln][0]
    assert "has run" in worker.log() and "past its max_run_time" in worker.log()
    # It ends: its whole duration counts, and the run is still one overrun.
    (procs.folder / "release-report-1").touch()
    wait_until(
        lambda: reports(app)["report"].overrun_seconds > report.overrun_seconds,
        what="the end of the overrunning run in its report",
        explain=worker.tail,
    )
    assert reports(app)["report"].overruns == 1

    # offload stats --json
    out = subprocess.run(
        [sys.executable, "-m", "offload", "stats", "--json", "--url", app.config.url],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows = {r["kind"]: r for r in json.loads(out.stdout)["run_time"]}
    assert rows["report"]["overruns"] >= 1 and rows["report"]["owner"] == "analytics"
    assert rows["report"]["deprioritized"] is True and rows["blocker"]["loop_blocks"] >= 1

    # /metrics and the dashboard's page, linked from every page
    with TestClient(create_app(app), base_url="http://127.0.0.1:8750") as client:
        metrics = client.get("/metrics").text
        assert (
            'offload_job_overruns_total{kind="report",owner="analytics",queue="reports"} 1.0'
            in metrics
        )
        assert 'offload_event_loop_blocks_total{kind="blocker",owner="search"' in metrics
        assert 'href="/ui/run-time"' in client.get("/").text
        page = client.get("/ui/run-time").text
        assert "report" in page and "analytics" in page and "deprioritized" in page
        assert "blocker" in page and "search" in page

    # New jobs of the overrunning kind order after the others of their queue.
    worker.signal(15)
    worker.wait_exit()
    app.overruns.forget()  # read the reports now, not at the next refresh
    quick = app.job_type("quick")
    first = [quick.enqueue(i).id for i in range(2)]
    slow = app.job_type("report").enqueue(3).id
    later = [quick.enqueue(i).id for i in range(2)]
    claimed = app.store.job_claim(ClaimParams([QUEUE], 10, "test", 60.0))
    assert [j.id for j in claimed] == [*first, *later, slow]
