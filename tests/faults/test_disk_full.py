"""Catalogue C2: the store's disk fills up, then space comes back.

SQLite runs on a tmpfs of 8 MB that a filler file fills; PostgreSQL is a throwaway cluster whose
tables live on a tmpfs of 40 MB (its write-ahead log elsewhere), filled by a table and given
room again by growing the tmpfs. The promises: an enqueue is refused with `StoreFullError` whose
message says what to do, and nothing of it is stored; over HTTP that is 503 with Retry-After and
/healthz says the store is unwritable; a worker started on the full disk waits with a growing
pause and one log line instead of crash-looping; once space returns everything resumes by
itself, nothing acknowledged is lost, and the SQLite file passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

import re
import signal
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from offload import Offload, StoreFullError
from offload.server import create_app
from offload.store.sqlite import SQLiteStore
from tests.integration._harness import Procs, wait_until

from ._disk import cluster_on_small_disk, fill, fill_postgres, free, resize, small_disk
from ._ledger import Ledger, check, record_figures
from .conftest import APP

BASE = "http://127.0.0.1:8750"


@dataclass
class SmallDisk:
    """A store on a disk the test fills (`fill`) and gives room again (`free`)."""

    url: str
    fill: Callable[[], object]
    free: Callable[[], object]


@pytest.fixture(params=["sqlite", "postgres"])
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmallDisk]:
    if request.param == "sqlite":
        with small_disk(tmp_path / "disk", "8m") as disk:
            yield SmallDisk(f"sqlite:///{disk}/jobs.db", lambda: fill(disk), lambda: free(disk))
    else:
        with cluster_on_small_disk("40m") as cluster:
            yield SmallDisk(
                cluster.url,
                lambda: fill_postgres(cluster.url),
                lambda: resize(cluster.data, "96m"),
            )


@pytest.fixture
def store_url(small: SmallDisk) -> str:
    """The fault fixtures' store lives on the small disk (overrides the suite's)."""
    return small.url


def enqueue_batch(ledger: Ledger, app: Offload, keys: list[str]) -> StoreFullError | None:
    """Enqueue `work` jobs for `keys` in one call, with their ledger lines; the refusal, if
    the store refused them (then nothing was stored: each key is a `fail`)."""
    work = app.job_type("work")
    for key in keys:
        ledger.note("invoke", key)
    try:
        jobs = app.enqueue_many(work.prepare(key=key) for key in keys)
    except StoreFullError as exc:
        for key in keys:
            ledger.note("fail", key)
        return exc
    for key, job in zip(keys, jobs, strict=True):
        ledger.note("ok", key, job.id)
    return None


def stored(app: Offload) -> int:
    return sum(c.count for c in app.store.job_counts())


def integrity(url: str) -> str:
    path = SQLiteStore(url).path
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def drain(procs: Procs, ledger: Ledger, keys: int, *options: str) -> None:
    """Run a worker until `keys` distinct keys ended, then stop it."""
    worker = procs.worker(*options, concurrency=4, app=APP, name="drain")
    wait_until(
        lambda: len(ledger.keys("end")) >= keys,
        timeout=60,
        what=f"{keys} jobs to end",
        explain=procs.logs,
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0, worker.tail()


def test_a_full_disk_refuses_enqueues_whole_then_takes_them_again(
    app: Offload, small: SmallDisk, procs: Procs, ledger: Ledger, engine: str
) -> None:
    assert enqueue_batch(ledger, app, [f"before-{i}" for i in range(20)]) is None
    small.fill()

    refusal = None
    for batch in range(5000):  # until the store's own free room is gone as well
        refusal = enqueue_batch(ledger, app, [f"full-{batch}-{i}" for i in range(10)])
        if refusal is not None:
            break
    assert isinstance(refusal, StoreFullError), "the store never refused a write"
    assert "free space" in str(refusal) and "Nothing of this operation was stored" in str(refusal)
    assert stored(app) == len(ledger.keys("ok")), "a refused batch left rows behind"
    assert enqueue_batch(ledger, app, ["full-again"]) is not None, "refusals are not stable"

    with TestClient(create_app(app), base_url=BASE) as client:
        ledger.note("invoke", "http-full")
        r = client.post("/jobs", json={"kind": "work", "args": {"key": "http-full"}})
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "/problems/store-full"
        assert int(r.headers["Retry-After"]) > 0
        ledger.note("fail", "http-full")
        health = client.get("/healthz")
        assert health.status_code == 503, health.text
        assert health.json()["type"] == "/problems/store-full"
        assert "disk is full" in health.json()["detail"]
        assert stored(app) == len(ledger.keys("ok"))

        small.free()
        assert enqueue_batch(ledger, app, [f"after-{i}" for i in range(20)]) is None
        ledger.note("invoke", "http-after")
        r = client.post("/jobs", json={"kind": "work", "args": {"key": "http-after"}})
        assert r.status_code == 202, r.text
        ledger.note("ok", "http-after", r.json()["id"])
        wait_until(
            lambda: client.get("/healthz").status_code == 200,
            timeout=15,
            what="/healthz to say the store takes writes again",
        )

    drain(procs, ledger, len(ledger.keys("ok")))
    verdict = check(ledger, app)
    verdict.assert_holds()
    assert not verdict.recovered, "a refused enqueue was stored after all"
    if engine == "sqlite":
        assert integrity(app.config.url) == "ok"
    record_figures("C2 disk full: enqueues refused whole, then taken again", engine, verdict)


def test_a_worker_started_on_a_full_disk_waits_and_resumes_by_itself(
    app: Offload, small: SmallDisk, procs: Procs, ledger: Ledger, engine: str
) -> None:
    keys = [f"job-{i}" for i in range(30)]
    assert enqueue_batch(ledger, app, keys) is None
    app.close()  # the workers open the store themselves, on the full disk
    small.fill()

    supervisor = procs.worker("--processes", "2", concurrency=4, app=APP, name="supervisor")
    wait_until(
        lambda: len(refusals(supervisor.log())) == 2,
        timeout=30,
        what="both worker processes to say that the store refuses writes",
        explain=supervisor.tail,
    )
    assert supervisor.alive()
    assert "restarting" not in supervisor.log(), supervisor.tail()
    assert "Traceback" not in supervisor.log(), supervisor.tail()

    small.free()
    wait_until(
        lambda: len(ledger.keys("end")) == len(keys),
        timeout=60,
        what="every job to end once space is back",
        explain=supervisor.tail,
    )
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait_exit() == 0, supervisor.tail()
    log = supervisor.log()
    assert log.count("started worker process") == 2, "a worker process was restarted"
    assert "restarting" not in log and "Traceback" not in log, supervisor.tail(60)
    assert "the store takes writes again" in log
    assert all(n <= 2 for n in refusals(log).values()), "refusals logged at an uncapped rate"

    verdict = check(ledger, app)
    verdict.assert_holds()
    if engine == "sqlite":
        assert integrity(app.config.url) == "ok"
    record_figures("C2 disk full: worker started on it waits, then resumes", engine, verdict)


def refusals(log: str) -> dict[int, int]:
    """Lines saying the store refuses writes, per worker process id."""
    counts: dict[int, int] = {}
    for pid in re.findall(r"\[(\d+)\] .*the store (?:still )?refuses writes", log):
        counts[int(pid)] = counts.get(int(pid), 0) + 1
    return counts


def test_a_disk_that_fills_under_a_running_worker_stalls_nothing_for_good(
    app: Offload, small: SmallDisk, procs: Procs, ledger: Ledger, engine: str
) -> None:
    keys = [f"job-{i}" for i in range(200)]
    assert enqueue_batch(ledger, app, keys) is None
    worker = procs.worker(concurrency=2, app=APP)
    wait_until(lambda: len(ledger.keys("end")) >= 20, what="20 jobs to end", explain=worker.tail)
    small.fill()
    refused = None
    for i in range(5000):
        if (refused := enqueue_batch(ledger, app, [f"late-{i}"])) is not None:
            break
    assert refused is not None
    ended_when_full = len(ledger.keys("end"))
    # Jobs go on where the store can take their writes (PostgreSQL updates rows in pages with
    # room; SQLite reuses its write-ahead log once it is copied back), else the worker waits.
    wait_until(
        lambda: (
            "the store refuses writes" in worker.log()
            or len(ledger.keys("end")) >= len(ledger.keys("ok"))
        ),
        what="the worker to meet the full disk, or to finish the jobs regardless",
        explain=worker.tail,
    )
    assert worker.alive(), worker.tail()

    small.free()
    wait_until(
        lambda: len(ledger.keys("end")) >= len(ledger.keys("ok")),
        timeout=60,
        what="every acknowledged job to end once space is back",
        explain=worker.tail,
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0, worker.tail()
    if refusals(worker.log()):
        assert "the store takes writes again" in worker.log()
    assert all(n <= 2 for n in refusals(worker.log()).values()), worker.tail(60)

    verdict = check(ledger, app)
    # At least once: a job whose acknowledgement the full disk refused may run again once its
    # lease ran out (at most the jobs the worker held: 2 slots and 8 claimed ahead).
    verdict.assert_holds(max_duplicated=10)
    if engine == "sqlite":
        assert integrity(app.config.url) == "ok"
    record_figures(
        "C2 disk full: fills under a running worker, then resumes",
        engine,
        verdict,
        ended_while_full=len(ledger.keys("end")) - ended_when_full,
    )


def test_refused_writes_are_retried_ever_later_and_logged_at_a_capped_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from offload.worker._refusals import Refusals

    refusals = Refusals(first=0.5, cap=10.0, log_every=60.0)
    full = StoreFullError("the disk is full")
    with caplog.at_level("WARNING", logger="offload.worker"):
        pauses = [refusals.refused(full, "claiming") for _ in range(8)]
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert len(caplog.records) == 1 and "refuses writes" in caplog.records[0].getMessage()
    refusals.accepted()
    assert "takes writes again after 8 refusals" in caplog.records[-1].getMessage()
    assert refusals.refused(full, "claiming") == 0.5, "the pause starts over once writes work"
