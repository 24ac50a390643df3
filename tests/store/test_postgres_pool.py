"""The PostgreSQL engine's connections: fast, clear connection failures; lost and silent
connections replaced; the connection settings offload adds to the URL's."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from offload import ConfigurationError, StoreBusyError, StoreError, StoreUnavailableError
from offload.store.postgres._connect import (
    CONNECT_DEFAULTS,
    PoolSettings,
    connect_error,
    connect_options,
    pool_settings,
)
from tests._engines import PG_URL, drop_schema, need_postgres

BASE = "postgresql://app@db.internal:5432/shop"


def test_answer_timeout_comes_from_the_url_and_0_waits_for_ever() -> None:
    assert pool_settings(f"{BASE}?answer_timeout=2.5").answer_timeout == 2.5
    assert pool_settings(f"{BASE}?answer_timeout=0").answer_timeout == 0
    assert pool_settings(BASE) == PoolSettings(1, 10, 30.0, 30.0)
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(ConfigurationError, match="answer_timeout"):
            pool_settings(f"{BASE}?answer_timeout={bad}")


def test_offload_adds_its_connection_defaults_unless_the_url_gives_them() -> None:
    assert connect_options(BASE) == CONNECT_DEFAULTS
    mine = connect_options(f"{BASE}?connect_timeout=20&keepalives_idle=60")
    assert "connect_timeout" not in mine and "keepalives_idle" not in mine
    assert mine["tcp_user_timeout"] == CONNECT_DEFAULTS["tcp_user_timeout"]
    assert connect_options("postgresql:///shop?host=/run/postgresql") == {"connect_timeout": "5"}


def test_a_reason_no_retry_cures_is_a_configuration_error_until_a_connection_succeeded() -> None:
    cause = psycopg.OperationalError('FATAL:  database "shpo" does not exist')
    first = connect_error(cause, "postgresql://db/shpo", connected_before=False)
    assert isinstance(first, ConfigurationError) and isinstance(first, StoreUnavailableError)
    assert 'database "shpo" does not exist' in str(first)
    later = connect_error(cause, "postgresql://db/shpo", connected_before=True)
    assert isinstance(later, StoreUnavailableError) and not isinstance(later, ConfigurationError)
    refused = connect_error(
        psycopg.OperationalError("Connection refused"), "x", connected_before=False
    )
    assert type(refused) is StoreUnavailableError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(20)
def test_a_server_that_is_not_there_fails_an_operation_at_once_with_libpq_s_reason() -> None:
    """Not after the pool's timeout (60 s here): the connection is attempted by the caller."""
    from offload.store.postgres._engine import PostgresStore

    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x?pool_timeout=60")
    try:
        with pytest.raises(StoreUnavailableError, match="Connection refused"):
            store.now()
        listener = store.listener(["default"])  # it will listen once the server is there
        try:
            assert listener.wait(0.1) is False
        finally:
            listener.close()
    finally:
        store.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    tag = f"offload-pool-{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}schema={schema}&application_name={tag}"
    drop_schema(schema)


@pytest.mark.timeout(20)
def test_a_misspelt_database_is_named_at_once(pg_url: str) -> None:
    from offload.store.postgres._engine import PostgresStore

    wrong = pg_url.replace("/test?", "/no_such_database_here?")
    store = PostgresStore(wrong)
    try:
        with pytest.raises(ConfigurationError, match='"no_such_database_here" does not exist'):
            store.now()
    finally:
        store.close()


def test_an_idle_connection_the_server_ended_is_never_used(pg_url: str) -> None:
    """Even a write that cannot be retried safely succeeds: the dead connection is dropped
    when taken, before anything is sent on it."""
    from offload.store.postgres._engine import PostgresStore

    store = PostgresStore(pg_url)
    store.migrate()
    try:
        store.counter_add("x", 1)
        tag = pg_url.rsplit("application_name=", 1)[1]
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                [tag],
            ).fetchone()
        assert killed == (1,)
        store.counter_add("x", 1)  # idempotent=False: it would raise on the dead connection
        assert store.counters()["x"] == 2
    finally:
        store.close()


def test_a_server_that_does_not_answer_within_the_answer_timeout_loses_the_connection(
    pg_url: str,
) -> None:
    from offload.store.postgres._engine import PostgresStore

    store = PostgresStore(f"{pg_url}&answer_timeout=0.5")
    try:
        pool = store._current_pool()
        with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
            conn.execute("SELECT pg_sleep(5)")
        assert conn.broken
        assert store.now() > 0  # and the next operation connects again
    finally:
        store.close()


def test_all_connections_in_use_past_the_pool_timeout_is_store_busy(pg_url: str) -> None:
    from offload.store.postgres._engine import PostgresStore

    store = PostgresStore(f"{pg_url}&pool_max=1&pool_timeout=0.2")
    try:
        with store._current_pool().connection():
            with pytest.raises(StoreBusyError, match="pool_max"):
                store.now()
        assert store.now() > 0
    finally:
        store.close()


def test_a_closed_store_refuses_work(pg_url: str) -> None:
    from offload.store.postgres._engine import PostgresStore

    store = PostgresStore(pg_url)
    store.now()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.now()
