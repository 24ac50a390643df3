"""Limits hold across real worker processes: a mutex key never runs two jobs at once, a rate
limit's tokens are shared by every worker, and a throttling error cuts an adaptive limit.

Nothing here times anything: the ledger's order and the store's counts are the evidence.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from offload import Offload

from ._harness import REPO, Ledger, Procs, count_in, wait_until
from .limitsapp import RATE, make_app

APP = "tests.integration.limitsapp:app"


@pytest.fixture
def lapp(app: Offload) -> Iterator[Offload]:
    """The limits app on the store of the `app` fixture (migrated there)."""
    application = make_app(app.config.url)
    yield application
    application.close()


def worker(procs: Procs, name: str, concurrency: int = 4) -> None:
    argv = ["-m", "offload", "worker", APP, "--url", procs.url, "--queues", "default"]
    procs.start([*argv, "--concurrency", str(concurrency)], name)


def test_a_mutex_key_never_runs_two_jobs_at_once_across_processes(
    lapp: Offload, procs: Procs, ledger: Ledger
) -> None:
    shops = (1, 2, 3, 4)
    work = lapp.job_type("mutex_work")
    # shop by shop: without the limit, the first slots would all take jobs of shop 1
    lapp.enqueue_many([work.prepare(shop, n) for shop in shops for n in range(10)])
    for i in range(2):
        worker(procs, f"worker{i}", concurrency=2)
    # The first job of each shop holds on: four of them fill the two workers' four slots, so
    # each worker runs two (both processes take part) and no slot is left for a second job of
    # a held shop.
    holders = {shop: ledger.wait_started(f"{shop}:0")[0] for shop in shops}
    assert sorted(Counter(holders.values()).values()) == [2, 2]
    for shop in shops:
        ledger.release(f"{shop}:0")
    wait_until(lambda: count_in(lapp, "completed") == 40, 60, "all 40 jobs to complete", procs.logs)
    held: dict[str, str | None] = {str(shop): None for shop in shops}
    for event, key, _ in ledger.lines():
        shop = key.split(":")[0]
        if event == "start":
            assert held[shop] is None, f"{key} started while {held[shop]} held shop {shop}"
            held[shop] = key
        elif event == "end":
            assert held[shop] == key
            held[shop] = None
    assert sum(ledger.tally("start").values()) == 40


def test_a_rate_limit_holds_across_two_worker_processes(
    lapp: Offload, procs: Procs, ledger: Ledger
) -> None:
    rated = lapp.job_type("rated")
    begun = lapp.store.now()
    lapp.enqueue_many([rated.prepare(n) for n in range(12)])
    for i in range(2):
        worker(procs, f"worker{i}")
    wait_until(
        lambda: ledger.tally("start") and sum(ledger.tally("start").values()) >= RATE,
        60,
        f"{RATE} rated jobs to start",
        procs.logs,
    )
    # Markers queue behind the 7 rated jobs left: a worker reaches them only by claims that
    # skip the exhausted key, so once they ran, both workers had every chance to overrun it.
    marker = lapp.job_type("marker")
    lapp.enqueue_many([marker.prepare(n) for n in range(8)])
    wait_until(lambda: len(ledger.tally("run")) == 8, 60, "the 8 markers to run", procs.logs)
    elapsed = lapp.store.now() - begun
    starts = sum(1 for e, k, _ in ledger.lines() if e == "start" and k.startswith("rated:"))
    assert starts <= RATE + RATE * elapsed / 3600  # the bucket: burst + refill since begun
    assert starts == RATE
    assert count_in(lapp, "available") == 12 - RATE
    (info,) = [x for x in lapp.store.limit_list() if x.key == "rated"]
    assert info.tokens is not None and info.tokens < 1

    shown = subprocess.run(
        [sys.executable, "-m", "offload", "stats", "--json", "--url", procs.url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    limits = {x["key"]: x for x in json.loads(shown.stdout)["limits"]}
    assert limits["rated"]["rate"] == RATE and limits["rated"]["per_seconds"] == 3600


def test_a_throttling_error_cuts_an_adaptive_limit(lapp: Offload, procs: Procs) -> None:
    pushed = lapp.job_type("pushed_back")
    lapp.enqueue_many([pushed.prepare(n) for n in range(3)])
    worker(procs, "worker", concurrency=1)
    wait_until(
        lambda: count_in(lapp, "retryable") == 3, 60, "the 3 jobs to be throttled", procs.logs
    )
    wait_until(
        lambda: next(x for x in lapp.store.limit_list() if x.key == "api").throttles == 3,
        30,
        "the worker to report 3 throttles",
        procs.logs,
    )
    (info,) = [x for x in lapp.store.limit_list() if x.key == "api"]
    assert info.concurrency == 1  # 8 -> 4 -> 2 -> 1: each throttle halves it, to the floor
