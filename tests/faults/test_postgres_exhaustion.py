"""B7: the server's `max_connections` reached by more workers than fit, and an HTTP server.

A throwaway cluster with `max_connections = 12` (9 for the non-superuser role offload uses, 3
kept for superusers such as this test's own connections). An `offload server` connects first,
then five workers ask for more connections than are left: those that cannot connect back off
and try again, and nobody dies. Then other clients take every slot left and the server's own
connections are killed: the API answers 503 with Retry-After at once (it does not wait for a
connection), and serves again once slots are free (the other clients leave, three workers are
stopped); every job it accepted runs.
"""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from offload import Offload
from tests._wait import eventually
from tests.integration._harness import Procs, wait_until

from ._cluster import Cluster, cluster_fixture  # noqa: F401 - the fixture
from ._ledger import Ledger, check, record_figures
from .pgapp import make_app

CLUSTER_SETTINGS = {"max_connections": "12", "superuser_reserved_connections": "3"}
PGAPP = "tests.faults.pgapp:app"
ROLE = "offload_app"
WORKERS = 5  # each wants up to 3 connections (a pool of 2 and the LISTEN one)
REQUESTS = 60
FULL = "too many clients already"  # libpq's reasons when max_connections is reached
RESERVED = "remaining connection slots are reserved"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def role_url(cluster: Cluster) -> Iterator[str]:
    """A store URL for a role without superuser rights, its schema migrated by that role."""
    with cluster.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]).fetchone():
            conn.execute(f"CREATE ROLE {ROLE} LOGIN")
            conn.execute(f"GRANT CREATE ON DATABASE postgres TO {ROLE}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = f"postgresql://{ROLE}@127.0.0.1:{cluster.port}/postgres?schema={schema}"
    owner = make_app(url)
    owner.store.migrate()
    owner.close()
    yield url
    cluster.drop_schema(schema)


@pytest.fixture
def app(cluster: Cluster, role_url: str) -> Iterator[Offload]:
    """The test's own view of the store, as a superuser (a reserved connection)."""
    application = make_app(role_url.replace(f"{ROLE}@", "postgres@"))
    yield application
    application.close()


def _post(base: str, key: str) -> tuple[int, dict[str, str], dict[str, object], float]:
    body = json.dumps({"kind": "work", "args": {"key": key}}).encode()
    request = urllib.request.Request(
        f"{base}/jobs", body, {"Content-Type": "application/json"}, method="POST"
    )
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:  # noqa: S310 - loopback
            status, headers, text = answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        status, headers, text = exc.code, dict(exc.headers), exc.read()
    return status, headers, json.loads(text or b"{}"), time.monotonic() - began


def test_b7_connection_exhaustion_backs_off_answers_503_and_loses_no_accepted_job(
    cluster: Cluster, app: Offload, role_url: str, workdir: Path, ledger: Ledger
) -> None:
    procs = Procs(f"{role_url}&pool_max=2", workdir)
    hogs: list[psycopg.Connection[Any]] = []
    answers: list[tuple[int, dict[str, str], float]] = []
    try:
        port = _free_port()
        server_url = f"{role_url}&pool_max=3&application_name=b7-server"
        server = procs.start(
            ["-m", "offload", "server", PGAPP, "--url", server_url, "--port", str(port),
             "--no-maintenance"],
            name="server",
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base), what="the server to answer", explain=server.tail)
        workers = [procs.worker(concurrency=2, app=PGAPP, name=f"w{i}") for i in range(WORKERS)]
        wait_until(
            lambda: any(FULL in w.log() or RESERVED in w.log() for w in workers),
            what="a worker to find no connection left",
            explain=procs.logs,
        )

        def enqueue(key: str) -> tuple[int, dict[str, str], float]:
            ledger.note("invoke", key)
            status, headers, body, took = _post(base, key)
            if status == 202:
                ledger.note("ok", key, int(str(body["id"])))
            else:
                ledger.note("info", key)  # refused, or its outcome unknown
            return status, headers, took

        # Other clients take every slot left, and the server loses its connections: it has
        # none and can get none, so it must refuse at once, with Retry-After.
        with cluster.connect() as admin:
            servers = "FROM pg_stat_activity WHERE application_name = 'b7-server'"
            admin.execute(f"SELECT pg_terminate_backend(pid) {servers}")
            wait_until(
                lambda: admin.execute(f"SELECT count(*) {servers}").fetchone() == (0,),
                what="the server's connections to end",
            )
        dsn = role_url.partition("?")[0]
        while len(hogs) < 20:
            try:
                hogs.append(psycopg.connect(dsn, autocommit=True))
            except psycopg.OperationalError:
                break
        with ThreadPoolExecutor(4) as pool:
            refused = list(pool.map(enqueue, [f"full-{i}" for i in range(REQUESTS // 3)]))
        answers += refused
        assert 503 in {status for status, _, _ in refused}, refused
        # Capacity comes back: the other clients leave and three workers are stopped (their
        # jobs and connections go back); a client that retries (as Retry-After asks) gets in,
        # and the server then serves every request on the connections it holds.
        for hog in hogs:
            hog.close()
        hogs.clear()
        for worker in workers[2:]:
            worker.signal(signal.SIGTERM)
        for worker in workers[2:]:
            assert worker.wait_exit() == 0, worker.tail()
        tries = iter(range(10_000))

        def retried() -> bool:
            answers.append(enqueue(f"retry-{next(tries)}"))
            return answers[-1][0] == 202

        # a client that tries again, with a pause between tries
        eventually(retried, timeout=10.0, what="the server to get a connection back")
        with ThreadPoolExecutor(8) as pool:
            burst = list(pool.map(enqueue, [f"http-{i}" for i in range(REQUESTS)]))
        answers += burst

        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {202, 503}, statuses
        unavailable = [headers for status, headers, _ in answers if status == 503]
        assert all("retry-after" in {k.lower() for k in h} for h in unavailable), unavailable[:3]
        accepted = {x.key for x in ledger.lines() if x.event == "ok"}
        served = sum(1 for status, _, _ in burst if status == 202)
        wait_until(
            lambda: accepted <= set(ledger.keys("end")),
            timeout=60,
            what="every accepted job to run",
            explain=procs.logs,
        )
        alive = [p.name for p in procs.started if p.alive()]
        assert alive == [p.name for p in [server, *workers[:2]]], f"died: {procs.logs()}"
        for worker in workers[:2]:
            worker.signal(signal.SIGTERM)
        for worker in workers[:2]:
            assert worker.wait_exit() == 0, worker.tail()
    finally:
        for hog in hogs:
            hog.close()
        procs.cleanup()
    verdict = check(ledger, app)
    verdict.assert_holds()
    record_figures(
        "B7 connection exhaustion",
        "postgres",
        verdict,
        answered_503=len(unavailable),
        burst_served=f"{served}/{REQUESTS}",
        slowest_answer_s=round(max(took for _, _, took in answers), 3),
    )


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False
