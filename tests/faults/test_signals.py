"""What operators see of faults (catalogue H4): after a worker is killed mid-job (A1), an
at-most-once job cut short with it, a stale acknowledgement fenced off (A4) and jobs that
ended dead, one scrape of `/metrics` reports each of them; and pruning the dead jobs past
their retention deletes those and nothing live, while the totals keep what they counted.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from offload import Offload
from offload.maintenance._pruner import Pruner
from offload.server import create_app
from offload.store._contract import ClaimParams, Completion
from tests.integration._harness import Procs, all_jobs, wait_until

from ._ledger import Ledger, check, record_figures
from .conftest import APP


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def scrape(app: Offload) -> Iterator[TestClient]:
    with TestClient(
        create_app(app, counts_cache_seconds=0.0), base_url="http://127.0.0.1:8750"
    ) as client:
        yield client


def test_one_scrape_reports_the_faults_and_pruning_keeps_live_jobs(
    app: Offload, procs: Procs, ledger: Ledger, scrape: TestClient, engine: str
) -> None:
    procs.maintainer()  # rescues what the killed workers held
    victim = procs.worker(concurrency=2, maintenance=False, name="victim", app=APP)
    ledger.enqueue(app, "held", "again")
    wait_until(lambda: ledger.pids("start", "again"), what="the held job to start")
    victim.signal(signal.SIGKILL)
    victim.wait_exit()
    second = procs.worker(concurrency=2, maintenance=False, name="second", app=APP)
    # A job a lost worker held runs alone (docs/crashes.md): the next one comes after it.
    wait_until(lambda: len(ledger.pids("start", "again")) == 2, what="the rescued job to rerun")
    (ledger.folder / "release-again").touch()
    wait_until(lambda: ledger.pids("end", "again"), what="the rescued job to end")
    wait_until(lambda: not check(ledger, app, kinds=["held"]).stuck, what="its completion")
    ledger.enqueue(app, "work_once", "cut-short", seconds=30.0)
    wait_until(lambda: ledger.pids("start", "cut-short"), what="the at-most-once job to start")
    second.signal(signal.SIGKILL)
    second.wait_exit()
    wait_until(
        lambda: {j.state for j in all_jobs(app, kind="work_once")} == {"dead"},
        what="the cut-short at-most-once job to be abandoned",
        explain=procs.logs,
    )
    # A late acknowledgement carrying a stale token, then the right one.
    ledger.enqueue(app, "work", "late")
    [late] = app.store.job_claim(ClaimParams(["default"], 1, "by-hand", 30.0))
    ledger.note("start", "late")
    ledger.note("end", "late")
    stale = app.store.job_complete_many([Completion(late.id, late.lease_token + 1)])
    assert (stale.applied, stale.stale) == (0, 1)
    assert app.store.job_complete_many([Completion(late.id, late.lease_token)]).applied == 1
    live = [app.call("work", delay=3600).enqueue(key=f"live-{i}") for i in range(3)]

    s = _samples(scrape.get("/metrics").text)
    events = {
        name: int(s.get(("offload_store_events_total", (("event", name),)), 0))
        for name in ("rescued", "abandoned", "stale_acks")
    }
    assert events == {"rescued": 1, "abandoned": 1, "stale_acks": 1}, events
    dead = (("kind", "work_once"), ("queue", "default"))
    assert s[("offload_jobs_dead_total", dead)] == 1
    assert s[("offload_jobs", (("queue", "default"), ("state", "dead")))] == 1
    assert s[("offload_jobs", (("queue", "default"), ("state", "scheduled")))] == 3
    assert s[("offload_jobs", (("queue", "default"), ("state", "running")))] == 0

    # Dead jobs past their retention are pruned; live ones never are.
    pruning = Offload(app.config.url, dead_retention=0.001)
    try:
        Pruner(every=60.0).run(pruning)
    finally:
        pruning.close()
    assert all_jobs(app, kind="work_once") == []
    assert [j.id for j in all_jobs(app) if j.state == "scheduled"] == [j.id for j in live]
    s = _samples(scrape.get("/metrics").text)
    assert s[("offload_jobs_dead_total", dead)] == 1, "pruning lost what dead jobs counted"
    assert s[("offload_jobs", (("queue", "default"), ("state", "dead")))] == 0

    for job in live:
        assert app.store.job_cancel(job.id)
    verdict = check(ledger, app, succeeds=lambda key: key != "cut-short")
    verdict.assert_holds(max_restarted=1, at_most_once=["cut-short"])
    record_figures("H4 fault signals in one scrape", engine, verdict, **events)
