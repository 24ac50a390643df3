"""The storage contract and a factory that opens the engine a URL names."""

from __future__ import annotations

import os

from offload._errors import ConfigurationError
from offload.store._contract import Store

DEFAULT_URL = "./offload.db"  # the store a process uses when neither code nor $OFFLOAD_URL names it


def resolve_url(url: str | None) -> str:
    """The store URL: the argument, else `$OFFLOAD_URL`, else `./offload.db`."""
    return url or os.environ.get("OFFLOAD_URL") or DEFAULT_URL


def open_store(url: str | None = None) -> Store:
    """Open the engine for a URL: `postgresql://…` or `postgres://…`, `sqlite:///…`, or a path."""
    resolved = resolve_url(url)
    scheme = resolved.split(":", 1)[0].lower() if "://" in resolved else ""
    if scheme in ("postgresql", "postgres"):
        try:
            from offload.store.postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigurationError(
                "PostgreSQL needs psycopg: pip install 'offload[postgres]'"
            ) from exc
        return PostgresStore(resolved)
    if scheme in ("", "sqlite"):
        from offload.store.sqlite import SQLiteStore

        return SQLiteStore(resolved)
    raise ConfigurationError(
        f"unknown store URL {resolved!r}: use sqlite:///path.db, a file path, "
        "or postgresql://user@host/db"
    )


def verify_store(url: str | None = None) -> None:
    """Check the store at `url` before a worker or a command uses it, without creating or
    migrating anything. On SQLite: what a missing write-ahead log lost, then a bounded
    `PRAGMA quick_check` of the file (`?integrity_check=off` in the URL skips it for a huge
    file); a damaged file raises `StoreCorruptError`, a full disk `StoreFullError`.
    PostgreSQL guards its own pages: nothing to check here."""
    resolved = resolve_url(url)
    scheme = resolved.split(":", 1)[0].lower() if "://" in resolved else ""
    if scheme not in ("", "sqlite"):
        return
    from offload.store.sqlite import SQLiteStore

    store = SQLiteStore(resolved)
    try:
        store.check_integrity()
    finally:
        store.close()


__all__ = ["Store", "open_store", "resolve_url", "verify_store", "DEFAULT_URL"]
