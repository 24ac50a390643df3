"""Fixtures shared by every test layer: a store URL per engine, each test isolated.

SQLite tests get a temp file. PostgreSQL tests get a schema of their own in the database named
by `$OFFLOAD_TEST_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/test); without a
server they skip on a developer's machine and fail in CI (`CI=true`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.store import open_store
from offload.store._contract import Store

PG_URL = os.environ.get("OFFLOAD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ENGINES = ["sqlite", "postgres"]


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return f"{type(exc).__name__}: {exc}"
    return None


_PG_PROBLEM: str | None | bool = False


def _need_postgres() -> None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _postgres_reachable()
    if _PG_PROBLEM:
        message = (
            f"PostgreSQL at {PG_URL} is not reachable ({_PG_PROBLEM}); start it or set "
            "OFFLOAD_TEST_POSTGRES=postgresql://user@host:port/db to run these tests"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_url(engine: str, tmp_path: Path) -> tuple[str, str | None]:
    """A fresh store URL for an engine and the PostgreSQL schema to drop afterwards."""
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'offload.db'}", None
    _need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={schema}", schema


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store, once per engine."""
    url, schema = make_url(request.param, tmp_path)
    yield url
    if schema:
        _drop_schema(schema)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An opened, migrated store, once per engine."""
    s = open_store(store_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of an empty SQLite store, for tests of SQLite-only behaviour."""
    return f"sqlite:///{tmp_path / 'offload.db'}"
