"""The bare SQL loop a perfect engine would run, in one process, for offload's drain to be
compared against: a batched claim (`UPDATE … RETURNING`; `FOR UPDATE SKIP LOCKED` on
PostgreSQL), the JSON arguments decoded, a no-op call, one batched ack statement per batch.

The table has the columns a claim and an ack touch, and the same partial claim index as
offload's; SQLite runs in WAL mode with synchronous=NORMAL (offload's default), PostgreSQL with
the server's defaults (synchronous_commit on).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench._config import pg_url, sqlite_file

DB = "bench_loop"


def _noop(i: int) -> None:
    pass


def sqlite_loop(n: int, batch: int) -> dict[str, Any]:
    import sqlite3

    path = sqlite_file("loop")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, queue TEXT NOT NULL, state TEXT NOT NULL, "
        "priority INTEGER NOT NULL DEFAULT 0, scheduled_at REAL NOT NULL, args TEXT NOT NULL, "
        "attempt INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_token INTEGER, "
        "finished_at REAL)"
    )
    conn.execute(
        "CREATE INDEX jobs_claim ON jobs (queue, priority DESC, scheduled_at, id) "
        "WHERE state = 'available'"
    )
    now = time.time()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO jobs (queue, state, scheduled_at, args) VALUES ('default', 'available', ?, ?)",
        ((now, json.dumps({"i": i})) for i in range(n)),
    )
    conn.execute("COMMIT")
    claim = (
        "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = 'w', "
        "lease_token = ? WHERE id IN (SELECT id FROM jobs WHERE state = 'available' AND "
        "queue = 'default' ORDER BY priority DESC, scheduled_at, id LIMIT ?) RETURNING id, args"
    )
    ack = (
        "UPDATE jobs SET state = 'completed', finished_at = ?, lease_owner = NULL "
        "WHERE id IN (SELECT value FROM json_each(?)) AND state = 'running'"
    )
    start = time.perf_counter()
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(claim, (done, batch)).fetchall()
        conn.execute("COMMIT")
        if not rows:
            break
        for _, args in rows:
            _noop(**json.loads(args))
        conn.execute("BEGIN IMMEDIATE")
        done += conn.execute(ack, (time.time(), json.dumps([r[0] for r in rows]))).rowcount
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    completed = conn.execute("SELECT count(*) FROM jobs WHERE state = 'completed'").fetchone()[0]
    conn.close()
    return {"n": n, "seconds": elapsed, "completed": completed, "batch": batch}


def postgres_loop(n: int, batch: int) -> dict[str, Any]:
    import psycopg

    from bench.systems import recreate_database

    recreate_database(DB)
    with psycopg.connect(pg_url(DB), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE jobs (id bigserial PRIMARY KEY, queue text NOT NULL, "
            "state text NOT NULL, priority integer NOT NULL DEFAULT 0, "
            "scheduled_at double precision NOT NULL, args jsonb NOT NULL, "
            "attempt integer NOT NULL DEFAULT 0, lease_owner text, lease_token bigint, "
            "finished_at double precision)"
        )
        conn.execute(
            "CREATE INDEX jobs_claim ON jobs (queue, priority DESC, scheduled_at, id) "
            "WHERE state = 'available'"
        )
        conn.execute(
            "INSERT INTO jobs (queue, state, scheduled_at, args) "
            "SELECT 'default', 'available', extract(epoch FROM now()), "
            "jsonb_build_object('i', g) FROM generate_series(0, %s - 1) AS g",
            (n,),
        )
        conn.execute("VACUUM ANALYZE jobs")
        claim = (
            "WITH picked AS MATERIALIZED (SELECT id FROM jobs WHERE state = 'available' "
            "AND queue = 'default' ORDER BY priority DESC, scheduled_at, id LIMIT %s "
            "FOR UPDATE SKIP LOCKED) "
            "UPDATE jobs AS j SET state = 'running', attempt = j.attempt + 1, "
            "lease_owner = 'w', lease_token = %s FROM picked WHERE j.id = picked.id "
            "RETURNING j.id, j.args"
        )
        ack = (
            "UPDATE jobs SET state = 'completed', lease_owner = NULL, "
            "finished_at = extract(epoch FROM clock_timestamp()) "
            "WHERE id = ANY(%s) AND state = 'running'"
        )
        start = time.perf_counter()
        done = 0
        while True:
            rows = conn.execute(claim, (batch, done), prepare=True).fetchall()
            if not rows:
                break
            for _, args in rows:
                _noop(**args)
            done += conn.execute(ack, ([r[0] for r in rows],), prepare=True).rowcount
        elapsed = time.perf_counter() - start
        row = conn.execute("SELECT count(*) FROM jobs WHERE state = 'completed'").fetchone()
    completed = int(row[0]) if row else 0
    return {"n": n, "seconds": elapsed, "completed": completed, "batch": batch}
