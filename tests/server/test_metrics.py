"""`/metrics`: the store's numbers at scrape time and this process's own counters."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from offload import Offload
from offload.store._contract import WorkerInfo

from ._helpers import enqueue, fetch


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_from_the_store_and_from_this_process(client: TestClient, app: Offload) -> None:
    for _ in range(3):
        enqueue(client)
    enqueue(client, "send_welcome", args={"user_id": 1})
    a, b = fetch(client, limit=2, worker="m-worker")
    client.post("/worker/complete", json={"id": a["id"], "token": a["token"], "result": 1})
    client.post(
        "/worker/fail", json={"id": b["id"], "token": b["token"], "error": "x", "retryable": False}
    )
    client.post("/worker/complete", json={"id": a["id"], "token": a["token"]})  # stale
    app.store.worker_beat(WorkerInfo("py-1", "h", 1, ["default"], 0.0, 0.0, 2))

    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    s = _samples(r.text)
    assert s[("offload_jobs", (("queue", "default"), ("state", "available")))] == 1
    assert s[("offload_jobs", (("queue", "default"), ("state", "completed")))] == 1
    assert s[("offload_jobs", (("queue", "default"), ("state", "dead")))] == 1
    assert s[("offload_jobs", (("queue", "node"), ("state", "available")))] == 0
    assert s[("offload_queue_depth", (("queue", "emails"),))] == 1
    assert s[("offload_jobs_finished_recent", (("state", "completed"), ("window", "5m")))] == 1
    assert s[("offload_jobs_finished_recent", (("state", "dead"), ("window", "1h")))] == 1
    assert s[("offload_store_events_total", (("event", "stale_acks"),))] == 1
    assert s[("offload_workers_alive", ())] == 2  # the HTTP worker and the Python one
    assert s[("offload_workers_running_jobs", ())] >= 2
    assert s[("offload_http_enqueued_total", (("kind", "add"), ("queue", "default")))] == 3
    assert s[("offload_http_fetched_total", (("kind", "add"), ("queue", "default")))] == 2
    assert s[("offload_http_completed_total", ())] == 1
    failed = (("kind", "add"), ("outcome", "dead"), ("queue", "default"))
    assert s[("offload_http_failed_total", failed)] == 1
    assert s[("offload_http_stale_acks_total", ())] == 1
    run = (("kind", "add"), ("le", "+Inf"), ("queue", "default"))
    assert s[("offload_job_run_seconds_recent_bucket", run)] == 1
    assert s[("offload_job_wait_seconds_recent_bucket", run)] == 1
    assert re.search(r"^# TYPE offload_job_wait_seconds_recent histogram$", r.text, re.M)
    assert (
        s[("offload_job_wait_seconds_recent_gcount", (("kind", "add"), ("queue", "default")))] == 1
    )


def test_openmetrics_when_the_scraper_asks(client: TestClient) -> None:
    r = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")
    assert "# TYPE offload_job_wait_seconds_recent gaugehistogram" in r.text
