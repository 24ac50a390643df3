"""The outbox table in an application's own database (SQLite or PostgreSQL).

An application whose data lives in another database than the job store stages jobs here,
inside its own transaction; `offload relay` moves them to the store. The functions take the
application's connection: a sqlite3 or psycopg connection, or a SQLAlchemy Connection or
Session, which is unwrapped to its driver connection. The relay opens the database by URL with
`open_source`, which hides how each dialect connects and ends a transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from offload._errors import ConfigurationError
from offload.store._sql import queries


@dataclass(frozen=True, slots=True)
class Staged:
    """A staged job: its outbox row id and the key that deduplicates it in the store."""

    id: int
    key: str


@dataclass(frozen=True, slots=True)
class Pending:
    """A staged job not relayed yet."""

    id: int
    key: str
    job: str


def unwrap(conn: Any) -> tuple[str, Any]:
    """The dialect ('sqlite' or 'postgres') and the driver connection behind `conn`."""
    module = type(conn).__module__
    if module.startswith("sqlalchemy"):
        if hasattr(conn, "connection") and hasattr(conn.connection, "dbapi_connection"):
            return unwrap(conn.connection.dbapi_connection)
        if hasattr(conn, "connection") and callable(conn.connection):  # a Session
            return unwrap(conn.connection().connection.dbapi_connection)
    if module.startswith("sqlite3"):
        return "sqlite", conn
    if module.startswith("psycopg"):
        return "postgres", conn
    raise ConfigurationError(
        f"cannot use a {type(conn).__name__} as a transaction: pass a sqlite3 or psycopg 3 "
        "connection, or a SQLAlchemy Connection or Session"
    )


def create_table(conn: Any) -> None:
    """Create the outbox table in the application's database if it is missing."""
    dialect, raw = unwrap(conn)
    q = queries(dialect, "outbox")
    cur = raw.cursor()
    cur.execute(q["create"])
    cur.execute(q["create_index"])


def stage(conn: Any, rows: list[tuple[str, str, str, float]]) -> list[Staged]:
    """Insert (key, kind, job JSON, created_at) rows in the caller's open transaction."""
    dialect, raw = unwrap(conn)
    sql = queries(dialect, "outbox")["stage"]
    cur = raw.cursor()
    out = []
    for key, kind, job, created in rows:
        cur.execute(sql, (key, kind, job, created))
        out.append(Staged(int(cur.fetchone()[0]), key))
    return out


def pending(raw: Any, dialect: str, limit: int) -> list[Pending]:
    """Staged jobs not relayed yet, oldest first (locked for this relay on PostgreSQL)."""
    cur = raw.cursor()
    cur.execute(queries(dialect, "outbox")["pending"], (limit,))
    return [Pending(int(r[0]), r[1], r[2]) for r in cur.fetchall()]


def mark(raw: Any, dialect: str, done: list[tuple[int, int]], at: float) -> None:
    """Mark (outbox id, job id) pairs relayed."""
    sql = queries(dialect, "outbox")["mark"]
    cur = raw.cursor()
    for outbox_id, job_id in done:
        cur.execute(sql, (at, job_id, outbox_id))


def prune(raw: Any, dialect: str, before: float) -> int:
    """Delete rows relayed before a time."""
    cur = raw.cursor()
    cur.execute(queries(dialect, "outbox")["prune"], (before,))
    return int(cur.rowcount or 0)


def pending_count(raw: Any, dialect: str) -> int:
    cur = raw.cursor()
    cur.execute(queries(dialect, "outbox")["pending_count"])
    return int(cur.fetchone()[0])


class Source:
    """The outbox of one application database, as the relay sees it: one connection of its own,
    and the dialect's SQL behind a few operations."""

    def __init__(self, dialect: str, conn: Any) -> None:
        self.dialect = dialect
        self.conn = conn

    @contextmanager
    def transaction(self) -> Iterator[Source]:
        """One batch of the relay: what it takes and marks commits together, or not at all
        when the block raises. On SQLite the write lock is taken at the start, so that two
        relays never take the same rows; PostgreSQL locks the rows `pending` returns."""
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self._end(commit=False)
            raise
        self._end(commit=True)

    def _end(self, commit: bool) -> None:
        if self.dialect == "postgres":
            self.conn.commit() if commit else self.conn.rollback()
        else:
            self.conn.execute("COMMIT" if commit else "ROLLBACK")

    def pending(self, limit: int) -> list[Pending]:
        """Staged jobs not relayed yet, oldest first (in a `transaction`)."""
        return pending(self.conn, self.dialect, limit)

    def mark(self, done: list[tuple[int, int]], at: float) -> None:
        """Mark (outbox id, job id) pairs relayed (in a `transaction`)."""
        mark(self.conn, self.dialect, done, at)

    def prune(self, before: float) -> int:
        """Delete rows relayed before a time (in a `transaction`)."""
        return prune(self.conn, self.dialect, before)

    def pending_count(self) -> int:
        """How many staged jobs wait to be relayed; a read of its own."""
        count = pending_count(self.conn, self.dialect)
        if self.dialect == "postgres":  # end the read's implicit transaction
            self.conn.commit()
        return count

    def close(self) -> None:
        self.conn.close()


def open_source(url: str) -> Source:
    """Open the outbox of the application database at `url` (`postgresql://…`, `sqlite:///…`
    or a path) on a connection of its own, creating the table when it is missing."""
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        conn: Any = psycopg.connect(url)
        create_table(conn)
        conn.commit()
        return Source("postgres", conn)
    import sqlite3

    from offload.store.sqlite._engine import sqlite_path

    path, _ = sqlite_path(url)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    create_table(conn)
    return Source("sqlite", conn)
