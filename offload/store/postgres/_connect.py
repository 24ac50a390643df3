"""Where the PostgreSQL engine connects: the URL and schema, and a caller's own connection."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from offload._errors import ConfigurationError, StoreError, StoreUnavailableError
from offload._redact import mask_url

DEFAULT_SCHEMA = "offload"
# Lower-case identifiers only; at most 55 characters so that the notification channel
# `offload_<schema>` stays within PostgreSQL's 63-character identifiers.
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,54}")


_POOL_KEYS = ("pool_min", "pool_max", "pool_timeout", "answer_timeout")

# What offload asks of libpq for its own connections unless the URL gives the key itself: a
# connection attempt gives up after 5 s (a mistyped or unreachable host fails fast, with
# libpq's reason), and TCP keepalives and a TCP user timeout make a peer that vanished without
# closing (a crashed host, a cut network) a broken connection within about 30 s, even on an
# idle one such as the LISTEN connection.
CONNECT_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # milliseconds
}


@dataclass(frozen=True)
class PoolSettings:
    """Each process's connection pool and its patience, from the URL:
    `?pool_min=1&pool_max=10&pool_timeout=30&answer_timeout=30`."""

    min_size: int = 1  # idle connections kept open at least
    max_size: int = 10
    timeout: float = 30.0  # seconds an operation waits for one of max_size busy connections
    # Seconds offload waits for any one answer of the server before it gives the connection up
    # as dead (a half-open connection, a server that stopped answering) and opens another;
    # 0 waits for ever. It must exceed the longest statement offload runs (migrations excepted).
    answer_timeout: float = 30.0


def pool_settings(url: str, default: PoolSettings = PoolSettings()) -> PoolSettings:
    """The pool settings a URL gives, over `default`; a bad value is a ConfigurationError."""
    try:
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    except ValueError:
        return default  # parse_url reports a malformed URL
    values: dict[str, float] = {}
    for key in _POOL_KEYS:
        if key not in query:
            continue
        text = query[key]
        seconds = key in ("pool_timeout", "answer_timeout")
        try:
            value = float(text) if seconds else int(text)
        except ValueError:
            value = -1
        lowest_ok = key == "answer_timeout" and value == 0  # 0: no answer timeout
        if not (value > 0 or lowest_ok) or value != value or value == float("inf"):
            kind = "a number of seconds above 0" if seconds else "a whole number ≥ 1"
            if key == "answer_timeout":
                kind = "a number of seconds (0: wait for ever)"
            raise ConfigurationError(f"{key}={text!r} in {redact(url)!r}: give {kind}")
        values[key] = value
    settings = PoolSettings(
        int(values.get("pool_min", default.min_size)),
        int(values.get("pool_max", default.max_size)),
        values.get("pool_timeout", default.timeout),
        values.get("answer_timeout", default.answer_timeout),
    )
    if settings.max_size < settings.min_size:
        raise ConfigurationError(
            f"pool_max={settings.max_size} is below pool_min={settings.min_size} in {redact(url)!r}"
        )
    return settings


def connect_options(conninfo: str) -> dict[str, str]:
    """The keyword arguments that add offload's CONNECT_DEFAULTS to a libpq URL, leaving out
    every key the URL (or the environment's PGCONNECT_TIMEOUT) sets itself."""
    given = conninfo_to_dict(conninfo)
    out = {k: v for k, v in CONNECT_DEFAULTS.items() if k not in given}
    if "connect_timeout" in out and os.environ.get("PGCONNECT_TIMEOUT"):
        del out["connect_timeout"]
    if str(given.get("host", "")).startswith("/"):  # a Unix socket: no TCP to tune
        for key in ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"):
            out.pop(key, None)
        out.pop("tcp_user_timeout", None)
    return out


# Reasons a connection attempt gives that no retry can cure: the server exists and refused the
# database or the user, or the name of the host means nothing.
_MISCONFIGURED = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf entry",
    "failed to resolve host",
    "could not translate host name",
    "invalid connection option",
    "invalid URI query parameter",
    "invalid integer value",
    "invalid value for parameter",
)


def connect_error(exc: Exception, where: str, connected_before: bool) -> StoreError:
    """The error for a failed connection attempt, with libpq's reason on one line: a
    ConfigurationError for a reason no retry can cure when this process never connected
    (a wrong database, user, password or host), else StoreUnavailableError (down, restarting,
    out of connections, unreachable: the caller backs off and tries again)."""
    cause = " ".join(str(exc).split())
    message = f"cannot connect to PostgreSQL at {where}: {cause}"
    if not connected_before and any(reason in cause for reason in _MISCONFIGURED):
        return MisconfiguredStoreError(message)
    return StoreUnavailableError(message)


class MisconfiguredStoreError(ConfigurationError, StoreUnavailableError):
    """The URL names a database, user, password or host that cannot work: fix the URL.
    A ConfigurationError (commands exit with a usage error) and a StoreUnavailableError."""


def redact(url: str) -> str:
    """The URL without its password (user part or `?password=`), for messages."""
    return mask_url(url)


def parse_url(url: str, schema: str | None) -> tuple[str, str]:
    """The libpq URL (without `schema`) and the schema a `postgresql://…?schema=x` URL names.

    An explicit `schema` argument must agree with one given in the URL."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigurationError(
            f"bad PostgreSQL URL {redact(url)!r} ({exc}): use "
            "postgresql://user:password@host:5432/database?schema=offload"
        ) from exc
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"{redact(url)!r} is not a PostgreSQL URL: it must start with postgresql://"
        )
    named = {value for key, value in query if key == "schema"}
    if len(named) > 1:
        raise ConfigurationError(f"PostgreSQL URL {redact(url)!r} names several schemas")
    in_url = named.pop() if named else None
    if schema is not None and in_url is not None and schema != in_url:
        raise ConfigurationError(
            f"schema={schema!r} disagrees with ?schema={in_url} in the URL; give it once"
        )
    chosen = schema if schema is not None else in_url if in_url is not None else DEFAULT_SCHEMA
    if not _SCHEMA.fullmatch(chosen):
        raise ConfigurationError(
            f"bad schema name {chosen!r}: use lower-case letters, digits and underscores, "
            "not starting with a digit, at most 55 characters (e.g. schema=offload)"
        )
    ours = ("schema", *_POOL_KEYS)
    rest = urlencode([(key, value) for key, value in query if key not in ours], quote_via=quote)
    base = url.partition("?")[0]  # not urlunsplit, which turns postgresql:///db into postgresql:/db
    conninfo = f"{base}?{rest}" if rest else base
    try:
        conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigurationError(f"bad PostgreSQL URL {redact(url)!r}: {exc}") from exc
    return conninfo, chosen


def caller_connection(conn: Any) -> psycopg.Connection[Any]:
    """The psycopg connection behind a caller's connection: a psycopg `Connection` itself, or a
    SQLAlchemy `Connection` or `Session` on the psycopg driver (whose transaction is begun, as
    SQLAlchemy would on a statement of its own, so that its commit covers ours). A connection
    of another driver (sqlite3, psycopg2 ...) is a ConfigurationError naming it."""
    given = conn
    if type(conn).__module__.startswith("sqlalchemy"):
        conn = _from_sqlalchemy(conn)
    if isinstance(conn, psycopg.Connection):
        return conn
    if isinstance(conn, psycopg.AsyncConnection):
        raise ConfigurationError(
            "an async psycopg connection was given to the synchronous store; "
            "use the async enqueue API for it, or pass a psycopg.Connection"
        )
    driver = type(conn).__module__.partition(".")[0]
    what = f"{type(given).__module__}.{type(given).__name__}"
    if driver != type(given).__module__.partition(".")[0]:
        what += f" on the {driver} driver"
    engine = "a SQLite database's" if driver == "sqlite3" else f"the {driver} driver's"
    raise ConfigurationError(
        f"cannot run the PostgreSQL store on {engine} connection ({what}): pass a "
        "psycopg.Connection, or a SQLAlchemy Connection or Session using the psycopg driver "
        "(postgresql+psycopg://), to the same database as the store"
    )


def _from_sqlalchemy(conn: Any) -> Any:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session, scoped_session

    if isinstance(conn, Session | scoped_session):
        conn = conn.connection()
    if not isinstance(conn, Connection):
        raise ConfigurationError(
            f"cannot run the store on a SQLAlchemy {type(conn).__name__}: pass a Connection or a "
            "Session (an AsyncConnection or AsyncSession needs the async enqueue API)"
        )
    if not conn.in_transaction():
        conn.begin()
    return conn.connection.dbapi_connection


async def async_caller_connection(conn: Any) -> psycopg.AsyncConnection[Any]:
    """The async psycopg connection behind a caller's async connection: a psycopg
    `AsyncConnection` itself, or a SQLAlchemy `AsyncConnection` or `AsyncSession` on the psycopg
    driver (`postgresql+psycopg://` with `create_async_engine`), its transaction begun."""
    if type(conn).__module__.startswith("sqlalchemy"):
        conn = await _from_sqlalchemy_async(conn)
    if isinstance(conn, psycopg.AsyncConnection):
        return conn
    raise ConfigurationError(
        f"cannot enqueue asynchronously on a {type(conn).__module__}.{type(conn).__name__}: "
        "pass a psycopg.AsyncConnection, or a SQLAlchemy AsyncConnection or AsyncSession using "
        "the psycopg driver (postgresql+psycopg://)"
    )


async def _from_sqlalchemy_async(conn: Any) -> Any:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_scoped_session

    if isinstance(conn, AsyncSession | async_scoped_session):
        conn = await conn.connection()
    if not isinstance(conn, AsyncConnection):
        raise ConfigurationError(
            f"cannot enqueue asynchronously on a SQLAlchemy {type(conn).__name__}: pass an "
            "AsyncConnection or an AsyncSession (a Connection or Session takes the sync enqueue)"
        )
    if not conn.in_transaction():
        await conn.begin()
    raw = await conn.get_raw_connection()
    return raw.driver_connection
