"""The outbox: jobs staged in the application's own database move to the store once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offload import Offload
from offload.app._outbox import Relay, create_table
from offload.store._contract import JobFilter
from tests._engines import PG_URL, drop_schema
from tests._engines import need_postgres as _need_postgres


def make_app(store_url: str) -> Offload:
    app = Offload(store_url)

    @app.job()
    def welcome(user_id: int) -> int:
        return user_id

    return app


@pytest.fixture(params=["sqlite", "postgres"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """An application database (URL and an open connection) with the outbox table."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'appdata.db'}"
        conn: Any = sqlite3.connect(tmp_path / "appdata.db", isolation_level=None)
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        create_table(conn)
        yield url, conn
        conn.close()
        return
    _need_postgres()
    import psycopg

    # The application's tables live in a schema of the test's own (its search_path, which the
    # relay's connection gets from the URL too), so that tests running at the same time each
    # have their own outbox.
    schema = f"app_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    conn = psycopg.connect(url, autocommit=True)
    try:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text)")
        create_table(conn)
        conn.autocommit = False
        yield url, conn
        conn.rollback()
    finally:
        conn.close()
        drop_schema(schema)


def _begin(conn: Any) -> None:
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN")


def _commit(conn: Any) -> None:
    if isinstance(conn, sqlite3.Connection):
        conn.execute("COMMIT")
    else:
        conn.commit()


def _rollback(conn: Any) -> None:
    if isinstance(conn, sqlite3.Connection):
        conn.execute("ROLLBACK")
    else:
        conn.rollback()


def test_staged_jobs_follow_the_application_transaction(
    source: tuple[str, Any], store_url: str
) -> None:
    url, conn = source
    app = make_app(store_url)
    welcome = app.jobs["welcome"]
    ph = "?" if isinstance(conn, sqlite3.Connection) else "%s"

    _begin(conn)
    conn.execute(f"INSERT INTO users (id, name) VALUES ({ph}, {ph})", (1, "ada"))
    app.stage(conn, [welcome.prepare(1)])
    _commit(conn)

    _begin(conn)
    conn.execute(f"INSERT INTO users (id, name) VALUES ({ph}, {ph})", (2, "bob"))
    app.stage(conn, [welcome.prepare(2)])
    _rollback(conn)

    relay = Relay(app, url)
    assert relay.pending() == 1
    assert relay.run_once() == 1
    assert relay.run_once() == 0
    relay.close()
    jobs = app.store.job_list(JobFilter())
    assert [j.args for j in jobs] == [{"user_id": 1}]


def test_a_job_relayed_twice_is_enqueued_once(source: tuple[str, Any], store_url: str) -> None:
    url, conn = source
    app = make_app(store_url)
    _begin(conn)
    app.stage(conn, [app.jobs["welcome"].prepare(i) for i in range(5)])
    _commit(conn)

    relay = Relay(app, url)
    relay.run_once()
    # The relay died after the store committed but before the outbox was marked: un-mark.
    _begin(conn)
    conn.execute("UPDATE offload_outbox SET relayed_at = NULL, job_id = NULL")
    _commit(conn)
    assert relay.run_once() == 5
    relay.close()
    counts = {c.state: c.count for c in app.store.job_counts()}
    assert counts == {"available": 5}


def test_relay_command_once(tmp_path: Path, sqlite_url: str) -> None:
    appdb = tmp_path / "appdata.db"
    conn = sqlite3.connect(appdb, isolation_level=None)
    create_table(conn)
    app = make_app(sqlite_url)
    conn.execute("BEGIN")
    app.stage(conn, [app.jobs["welcome"].prepare(i) for i in range(3)])
    conn.execute("COMMIT")
    conn.close()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "offload",
            "relay",
            "--source",
            f"sqlite:///{appdb}",
            "--url",
            sqlite_url,
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "relayed 3 jobs" in done.stdout
    assert sum(c.count for c in app.store.job_counts()) == 3


def test_a_relayed_job_keeps_its_deadline_tenant_and_limit(
    source: tuple[str, Any], store_url: str
) -> None:
    from offload import Limit

    url, conn = source
    app = Offload(store_url)

    @app.job(slo=60, tenant="{shop}", limit=Limit("shop:{shop}", concurrency=1))
    def hook(shop: int) -> None: ...

    _begin(conn)
    app.stage(conn, [hook.prepare(7), hook.prepare(7)])
    _commit(conn)
    relay = Relay(app, url)
    assert relay.run_once() == 2
    relay.close()
    jobs = app.store.job_list(JobFilter())
    assert {(j.tenant, j.limit_key, j.deadline is not None) for j in jobs} == {
        ("7", "shop:7", True)
    }
    assert [x.concurrency for x in app.store.limit_list()] == [1]
