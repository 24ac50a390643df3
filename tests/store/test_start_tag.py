"""The ordering rule written once: each job stores its fair-queuing start tag, the order key is
derived from it by the schema, and the lane heads are read through one view that keeps to the
claim index (offload/dispatch/_ordering.py)."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from typing import Any
from urllib.parse import urlparse

import pytest

from offload.store import open_store
from offload.store._contract import Lease, Store
from offload.store._sql import migrations, queries
from tests.store._helpers import claim, get, insert, new_job

# Rows as the schema before the start tag held them: (state, order_key, slo).
_BEFORE = [
    ("available", 7.5, 2.5),  # start tag 5.0
    ("available", 3.0, None),  # start tag 3.0: the lane's head
    ("scheduled", 0.0, 10.0),  # not tagged yet
    ("retryable", 12.0, 2.0),  # start tag 10.0
]


def test_no_named_statement_recomputes_the_start_tag() -> None:
    for dialect in ("sqlite", "postgres"):
        folder = resources.files("offload.store").joinpath(dialect)
        for entry in folder.iterdir():
            if entry.name.endswith(".sql"):
                text = entry.read_text("utf-8")
                assert not re.search(r"order_key\s*-", text), (dialect, entry.name)


def test_the_migration_fills_the_start_tags_of_jobs_already_stored(store_url: str) -> None:
    fresh = open_store(store_url)
    try:
        ids = _migrate_all_but_last_and_store(fresh, _BEFORE)
        start_tag = _start_tag_version(fresh.engine)
        assert fresh.migrate() == [v for v, _, _ in migrations(fresh.engine) if v >= start_tag]
        assert [get(fresh, i).order_key for i in ids] == [7.5, 3.0, 0.0, 12.0]
        assert _start_tags(fresh, ids) == [5.0, 3.0, None, 10.0]
        # The lanes of the jobs already there are known: a new flow starts at the head's tag.
        (later,) = insert(fresh, new_job("other"))
        assert get(fresh, later).order_key == 3.0
        assert [j.id for j in claim(fresh, limit=3)] == [ids[1], later, ids[0]]
    finally:
        fresh.close()


def test_a_job_put_back_behind_its_lanes_head_starts_there_and_keeps_its_slo(store: Store) -> None:
    (slow,) = insert(store, new_job("slow", slo=30.0))  # start tag 0, order key 30
    insert(store, *[new_job("sync") for _ in range(5)])  # start tags 0..4
    taken = claim(store, limit=6)
    assert taken[-1].id == slow
    insert(store, *[new_job("sync") for _ in range(5)])  # start tags 5..9: the head's is 5
    assert store.job_release_many([Lease(slow, taken[-1].lease_token)]) == 1
    assert get(store, slow).order_key == 35.0


def test_sqlite_lane_heads_and_put_backs_read_the_claim_index(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        store.migrate()
        store.job_insert_many([new_job(args={"i": i}) for i in range(2000)])
        path = store.path  # type: ignore[attr-defined]
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        for file, name in (
            ("dispatch", "flow_read"),
            ("dispatch", "job_promote_ids"),
            ("queries", "job_release"),
            ("queries", "job_rescue_unstarted"),
        ):
            sql = queries("sqlite", file)[name]
            named = re.findall(r":(\w+)", sql)
            params: dict[str, None] | list[None] = (
                dict.fromkeys(named) if named else [None] * sql.count("?")
            )
            plan = "\n".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "SEARCH h USING INDEX offload_jobs_claim (queue=? AND priority=?)" in plan, (
                name,
                plan,
            )
            assert "SCAN offload_jobs" not in plan and "state_kind" not in plan, (name, plan)


@pytest.mark.engine("postgres")
def test_postgres_lane_heads_read_the_claim_index_before_analyze(store: Store) -> None:
    import psycopg

    store.job_insert_many([new_job(args={"i": i}) for i in range(1000)])
    schema = store.schema  # type: ignore[attr-defined]
    with psycopg.connect(store.conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                f'EXPLAIN SELECT head FROM "{schema}".offload_lane_heads '
                "WHERE queue = 'default' AND priority = 0"
            )
        )
    assert "Index Scan using offload_jobs_claim on offload_jobs h" in plan, plan
    assert "Sort" not in plan, plan


# --- the schema before the start tag -------------------------------------------------------
def _start_tag_version(engine: str) -> int:
    """The number of the migration that introduced start tags (later ones follow it)."""
    return next(v for v, name, _ in migrations(engine) if name == "start_tag")


def _migrate_all_but_last_and_store(store: Store, rows: list[tuple[str, float, Any]]) -> list[int]:
    """Apply every migration before the start tag's by hand, record them as the store does,
    and store `rows` as that schema held them; their ids, in order."""
    start_tag = _start_tag_version(store.engine)
    earlier = [m for m in migrations(store.engine) if m[0] < start_tag]
    sql = (
        "INSERT INTO offload_jobs (kind, queue, args, state, max_attempts, scheduled_at, "
        "inserted_at, order_key, slo) VALUES ('k', 'default', '{}', %s, 3, 0, 0, %s, %s) "
        "RETURNING id"
    )
    if store.engine == "sqlite":
        conn = sqlite3.connect(urlparse(store.url).path[1:])
        try:
            conn.execute(store._q["migrations_table"])  # type: ignore[attr-defined]
            for version, name, text in earlier:
                conn.executescript(text)
                conn.execute("INSERT INTO offload_migrations VALUES (?, ?, 0)", (version, name))
            ids = [int(conn.execute(sql.replace("%s", "?"), r).fetchone()[0]) for r in rows]
            conn.commit()
        finally:
            conn.close()
        return ids
    import psycopg

    schema = store.schema  # type: ignore[attr-defined]
    with psycopg.connect(store.conninfo, autocommit=True) as pg:  # type: ignore[attr-defined]
        pg.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        pg.execute(f'SET search_path TO "{schema}"')
        pg.execute(store._q["migrations_table"])  # type: ignore[attr-defined]
        for version, name, text in earlier:
            pg.execute(text)
            pg.execute(
                "INSERT INTO offload_migrations VALUES (%s, %s, 0)", (version, name), prepare=False
            )
        return [int(pg.execute(sql, r).fetchone()[0]) for r in rows]  # type: ignore[index]


def _start_tags(store: Store, ids: list[int]) -> list[float | None]:
    if store.engine == "sqlite":
        with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
            found = dict(conn.execute("SELECT id, start_tag FROM offload_jobs").fetchall())
    else:
        import psycopg

        schema = store.schema  # type: ignore[attr-defined]
        with psycopg.connect(store.conninfo) as pg:  # type: ignore[attr-defined]
            found = dict(
                pg.execute(f'SELECT id, start_tag FROM "{schema}".offload_jobs').fetchall()
            )
    return [found[i] for i in ids]
