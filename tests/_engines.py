"""Engines for the tests: a fresh store URL per engine, PostgreSQL reachable or not.

SQLite tests get a temp file. PostgreSQL tests get a schema of their own in the database named
by `$OFFLOAD_TEST_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/test); without a
server they skip on a developer's machine and fail in CI (`CI=true`). A test meant for one
engine says so with `@pytest.mark.engine("sqlite")` (or "postgres"): it is collected for that
engine only (its copies for the others are deselected), rather than returning early there.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

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


def need_postgres() -> None:
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


def marked_engines(node: pytest.Item) -> tuple[str, ...] | None:
    """The engines a test's `engine` marker names (None without one); a marker that names no
    engine, or one that is not in ENGINES, is refused with the test's name."""
    marker = node.get_closest_marker("engine")
    if marker is None:
        return None
    names = tuple(marker.args)
    unknown = [name for name in names if name not in ENGINES]
    if not names or unknown or marker.kwargs:
        raise pytest.UsageError(
            f"{node.nodeid}: @pytest.mark.engine takes one or more of {ENGINES} as positional "
            f"arguments, not {marker.args!r} {marker.kwargs!r}"
        )
    return names


def for_other_engine(item: pytest.Item) -> bool:
    """Whether `item` is a copy of an engine-marked test for an engine its marker leaves out."""
    names = marked_engines(item)
    callspec = getattr(item, "callspec", None)
    engine = None if callspec is None else callspec.params.get("store_url")
    return names is not None and engine is not None and engine not in names


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_url(engine: str, tmp_path: Path) -> tuple[str, str | None]:
    """A fresh store URL for an engine and the PostgreSQL schema to drop afterwards."""
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'offload.db'}", None
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={schema}", schema


# Older names, kept for tests written against conftest.
_need_postgres = need_postgres
_drop_schema = drop_schema
