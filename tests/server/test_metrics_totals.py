"""Event totals in `/metrics` by queue and kind, counted from real jobs on every engine: run
by `drain`, by a Python worker, and by an HTTP worker; kept when a job is discarded (and
pruned: tests/store/test_totals.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from starlette.testclient import TestClient

from offload import Offload
from offload.testing import drain
from offload.worker import Worker

from ._helpers import MakeClient, enqueue, fetch
from ._live import wait_until
from .test_metrics import _samples

EVENTS = ("enqueued", "started", "completed", "failed", "retried", "dead", "shed")


def _totals(client: TestClient, queue: str, kind: str) -> dict[str, float]:
    s = _samples(client.get("/metrics").text)
    labels = (("kind", kind), ("queue", queue))
    return {e: s.get((f"offload_jobs_{e}_total", labels), 0.0) for e in EVENTS}


def _declare_wobbly(app: Offload, marker: Path) -> None:
    @app.job(queue="wobbly", max_attempts=2, backoff=0)
    def wobbly(n: int) -> int:
        """Fails the first attempt of every odd n, and every attempt of n < 0."""
        seen = marker / str(n)
        if n < 0 or (n % 2 and not seen.exists()):
            seen.touch()
            raise RuntimeError(f"wobble {n}")
        return n


def test_totals_of_jobs_run_by_drain(app: Offload, make_client: MakeClient, tmp_path: Path) -> None:
    _declare_wobbly(app, tmp_path)
    client = make_client(app)
    for n in (2, 3, 5, -1):  # 2 completes; 3 and 5 fail once then complete; -1 ends dead
        app.enqueue("wobbly", n)
    app.rules.add(kind="wobbly", where="args.n == 13")
    app.enqueue("wobbly", 13)  # shed at enqueue
    app.enqueue("wobbly", 4)
    app.rules.add(kind="wobbly", where="args.n == 4")  # shed when claimed
    drain(app, ["wobbly"], with_scheduled=True)
    assert _totals(client, "wobbly", "wobbly") == {
        "enqueued": 6,
        "started": 7,  # 2 once; 3, 5 and -1 twice (4 was shed at its claim, not started)
        "completed": 3,
        "failed": 4,
        "retried": 3,
        "dead": 1,
        "shed": 2,
    }
    assert _totals(client, "default", "add")["enqueued"] == 0


def test_totals_of_jobs_run_by_a_python_worker(
    app: Offload, make_client: MakeClient, tmp_path: Path
) -> None:
    _declare_wobbly(app, tmp_path)
    client = make_client(app)
    handles = [app.enqueue("wobbly", n) for n in (1, 2, -3)]
    worker = Worker(app, ["wobbly"], 2, poll_interval=0.05, maintenance=True)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: {h.refresh().state for h in handles} <= {"completed", "dead"},
            what="the jobs to finish",
        )
    finally:
        worker.stop()
        thread.join(30)
    assert _totals(client, "wobbly", "wobbly") == {
        "enqueued": 3,
        "started": 5,
        "completed": 2,
        "failed": 3,
        "retried": 2,
        "dead": 1,
        "shed": 0,
    }


def test_totals_of_jobs_run_by_an_http_worker(client: TestClient) -> None:
    for _ in range(3):
        enqueue(client)
    a, b, c = fetch(client, limit=3, worker="t-worker")
    client.post("/worker/complete", json={"id": a["id"], "token": a["token"], "result": 3})
    client.post("/worker/fail", json={"id": b["id"], "token": b["token"], "error": "again"})
    client.post(
        "/worker/fail",
        json={"id": c["id"], "token": c["token"], "error": "no", "retryable": False},
    )
    assert _totals(client, "default", "add") == {
        "enqueued": 3,
        "started": 3,
        "completed": 1,
        "failed": 2,
        "retried": 1,
        "dead": 1,
        "shed": 0,
    }


def test_totals_stay_when_a_job_is_discarded(client: TestClient) -> None:
    first = enqueue(client)
    enqueue(client)
    job = fetch(client, limit=1)[0]
    client.post("/worker/complete", json={"id": job["id"], "token": job["token"], "result": 3})
    before = _totals(client, "default", "add")
    assert client.delete(f"/jobs/{first['id']}").status_code == 204
    after = _totals(client, "default", "add")
    assert (
        after
        == before
        == {**dict.fromkeys(EVENTS, 0.0), "enqueued": 2, "started": 1, "completed": 1}
    )
