"""Waiting producers and polling workers have bounds of their own, and the overview page and
`/metrics` read the store once per cache period however many load them (issue 16, item 6)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx2 as httpx

from offload import Offload
from offload.server import create_app

from ._helpers import declare
from ._live import serve, wait_until

PRODUCERS = 3


def test_waiting_producers_do_not_starve_worker_fetches(sqlite_url: str) -> None:
    app = declare(Offload(sqlite_url, lease_seconds=30))
    asgi = create_app(app, max_result_waits=PRODUCERS, max_worker_polls=PRODUCERS, max_wait=30)
    server = asgi.state.offload
    answers: list[httpx.Response] = []

    def produce(base: str, n: int) -> None:
        r = httpx.post(
            f"{base}/jobs",
            json={"kind": "add", "args": {"a": n, "b": 1}},
            headers={"Expect": "200-ok"},
            timeout=60,
        )
        answers.append(r)

    try:
        with serve(asgi) as base:
            producers = [threading.Thread(target=produce, args=(base, n)) for n in range(PRODUCERS)]
            for t in producers:
                t.start()
            wait_until(lambda: server.result_waits.used == PRODUCERS, what="producers to wait")
            # Every result-wait slot is taken: a worker's long poll still gets its own.
            r = httpx.post(
                f"{base}/worker/fetch",
                json={"worker": "w1", "queues": ["default"], "limit": PRODUCERS, "wait": 5},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            jobs = r.json()["jobs"]
            assert len(jobs) == PRODUCERS
            for job in jobs:
                done = httpx.post(
                    f"{base}/worker/complete",
                    json={"id": job["id"], "token": job["token"], "result": job["args"]["a"] + 1},
                    timeout=30,
                )
                assert done.status_code == 200, done.text
            for t in producers:
                t.join(60)
            assert sorted(a.status_code for a in answers) == [200] * PRODUCERS
            assert sorted(a.json()["result"] for a in answers) == list(range(1, PRODUCERS + 1))
    finally:
        app.close()


def _counting(obj: Any, name: str, calls: dict[str, int]) -> None:
    original: Callable[..., Any] = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] = calls.get(name, 0) + 1
        return original(*args, **kwargs)

    setattr(obj, name, counted)


def _load_at_once(url: str, times: int) -> list[int]:
    statuses: list[int] = []
    go = threading.Barrier(times)

    def load() -> None:
        go.wait()
        statuses.append(httpx.get(url, timeout=60).status_code)

    threads = [threading.Thread(target=load) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def test_concurrent_overview_and_metrics_loads_read_the_store_once(sqlite_url: str) -> None:
    app = declare(Offload(sqlite_url))
    for n in range(20):
        app.enqueue("add", n, 1)
    # A period longer than the test: every load falls within one, so each count is read once.
    asgi = create_app(app, counts_cache_seconds=3600)
    calls: dict[str, int] = {}
    for name in ("job_counts", "job_totals", "job_finished_since"):
        _counting(app.store, name, calls)
    try:
        with serve(asgi) as base:
            assert _load_at_once(f"{base}/", 12) == [200] * 12
            assert calls["job_counts"] == 1
            overview_reads = calls["job_finished_since"]
            assert _load_at_once(f"{base}/metrics", 12) == [200] * 12
            assert calls["job_totals"] == 1
            assert calls["job_counts"] == 2  # one more: the metrics' own read
            # the chart's and the metrics' windows, each read once
            assert calls["job_finished_since"] == overview_reads + 3
            # within the period, later loads read nothing
            assert httpx.get(f"{base}/", timeout=30).status_code == 200
            assert httpx.get(f"{base}/metrics", timeout=30).status_code == 200
            assert calls["job_counts"] == 2 and calls["job_totals"] == 1
    finally:
        app.close()
