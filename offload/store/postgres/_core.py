"""The PostgreSQL engine's executor: where an operation's statements run.

Every operation of every family (`_jobs.py`, `_dispatch.py`, `_policy.py`, `_maintenance.py`,
`_admin.py`, `_totals.py`) runs its statements through `_run` and nothing else, so it runs
unchanged on any executor:

- the store itself: each operation takes a pooled connection (autocommit), opens a transaction
  when it needs one, and is retried once after a lost connection when that is safe;
- an executor bound to one connection (`transaction()` on a pooled one, `bind()` on a
  caller's): the operation runs in that connection's open transaction, with no BEGIN, COMMIT or
  retry of its own, and its notifications are delivered when that transaction commits.

A bound executor is a shallow copy of the store sharing its `Shared` state (the pool, the
dispatch policy's memory), so the families need no case of their own for it.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar, cast

import psycopg
from psycopg import pq, sql

from offload._errors import ConfigurationError, StoreError, StoreUnavailableError
from offload.dispatch._limits import Alarm
from offload.dispatch._ordering import ClockWrites
from offload.store._contract import Store
from offload.store._sql import queries
from offload.store.postgres._connect import (
    PoolSettings,
    caller_connection,
    parse_url,
    pool_settings,
    redact,
)
from offload.store.postgres._errors import refused
from offload.store.postgres._pool import Pool

T = TypeVar("T")
Conn = psycopg.Connection[Any]
_FILES = (
    "queries",
    "dispatch",
    "policy",
    "pauses",
    "totals",
    "runtime",
    "events",
    "versions",
    "alerts",
    "workflows",
    "sealed",
)  # the named statements of every family


class Retry(StoreError):
    """Raised by an operation's body when its transaction should run again from the start
    (e.g. a unique key's holder vanished under it); `_run` reruns it on the pool a few times,
    and a bound executor, whose transaction it cannot rerun, lets it through."""


@dataclass
class Shared:
    """What a store and all its executors share: the pool of this process, and what the
    dispatch policy remembers between claims (offload/store/postgres/_dispatch.py)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pid: int = field(default_factory=os.getpid)
    pool: Pool | None = None
    orphans: list[Pool] = field(default_factory=list)
    closed: bool = False
    limited: set[str] = field(default_factory=set)  # queues whose claims go through limits
    clock_writes: ClockWrites = field(default_factory=ClockWrites)
    alarm: Alarm = field(default_factory=Alarm)


@dataclass
class Binding:
    """The connection an executor is bound to. `owned`: a pooled connection held for a store
    transaction (else a caller's); `open` turns False when the transaction ends. `lock` runs
    one operation at a time on it (async code may call the executor from several threads)."""

    conn: Conn
    owned: bool
    open: bool = True
    lock: threading.RLock = field(default_factory=threading.RLock)


class PostgresCore:
    """The statement runner every operation family of the PostgreSQL engine builds on."""

    engine = "postgres"
    in_transaction: bool = False  # True on an executor bound to one open transaction
    _binding: Binding | None = None

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        answer_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.conninfo, self.schema = parse_url(url, schema)
        given = PoolSettings(min_size, max_size, timeout, answer_timeout)
        self.pool_settings = pool = pool_settings(url, given)  # the URL's win
        self.min_size, self.max_size, self.timeout = pool.min_size, pool.max_size, pool.timeout
        self.answer_timeout = pool.answer_timeout
        self.channel = f"offload_{self.schema}"
        self._where = redact(url)
        self._q = {
            name: self._expand(text)
            for file in _FILES
            for name, text in queries("postgres", file).items()
        }
        self._shared = Shared()

    def _expand(self, text: str) -> str:
        """Our own SQL with the (validated, quoted) schema and channel names put in."""
        schema = sql.Identifier(self.schema).as_string()
        channel = sql.Identifier(self.channel).as_string()
        return text.replace("{schema}", schema).replace("{channel}", channel)

    # --- executors ---------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Self]:
        """Open one store transaction on a pooled connection and yield an executor bound to
        it (this store's interface): every operation on it runs in the transaction, which
        commits when the block ends and rolls back when it raises. On an executor already in
        a transaction, yields that executor (the block joins it)."""
        binding = self._binding
        if binding is None:
            with self._pooled_transaction() as executor:
                yield executor
        elif binding.owned or not _idle_autocommit(binding.conn):
            yield self
        else:  # a caller's connection in autocommit, no transaction open: open one on it
            try:
                with binding.conn.transaction():
                    yield self
            except psycopg.OperationalError as exc:
                raise self._lost(exc, binding, "the transaction") from exc

    @contextlib.contextmanager
    def _pooled_transaction(self) -> Iterator[Self]:
        """`transaction()` on the store itself: one pooled connection held from BEGIN to
        COMMIT (or ROLLBACK). A lost connection keeps nothing of the block (the server rolls
        it back): StoreUnavailableError; lost during the COMMIT itself, the outcome is
        unknown: StoreError."""
        pool = self._current_pool()
        lease, conn, tx = self._begin(pool)
        binding = Binding(conn, owned=True)
        committing = False
        try:
            try:
                yield self._bound_to(binding)
            except BaseException as exc:
                binding.open = False
                if not conn.broken:  # else the server rolled it back already
                    tx.__exit__(type(exc), exc, exc.__traceback__)  # ROLLBACK
                raise
            binding.open = False
            if conn.broken:  # lost under the block, which went on regardless
                raise psycopg.OperationalError("the connection was lost")
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                tx.__exit__(None, None, None)  # the server answers this COMMIT with ROLLBACK
                raise StoreError(
                    "the transaction was rolled back: a statement in it failed, and nothing "
                    "of the transaction was stored"
                )
            committing = True
            tx.__exit__(None, None, None)  # COMMIT
        except psycopg.OperationalError as exc:
            if (full := refused(exc, self._where, "the transaction")) is not None:
                raise full from exc
            if not _gone(conn, exc):
                raise
            pool.discard_idle()
            cause = " ".join(str(exc).split())
            if committing:
                raise StoreError(
                    f"the connection to PostgreSQL at {self._where} was lost while a "
                    f"transaction committed; it may or may not have committed: {cause}"
                ) from exc
            raise StoreUnavailableError(
                f"the connection to PostgreSQL at {self._where} was lost inside a transaction; "
                f"nothing of it was stored: {cause}"
            ) from exc
        finally:
            lease.__exit__(None, None, None)  # the connection goes back (lost: away)

    def _begin(
        self, pool: Pool
    ) -> tuple[contextlib.AbstractContextManager[Any], Conn, psycopg.Transaction]:
        """A pooled connection with a transaction begun on it (BEGIN sent): a connection found
        lost at the BEGIN, before anything ran, is replaced once, as `_run` does."""
        for attempt in (1, 2):
            lease = pool.connection()
            conn = lease.__enter__()
            tx = psycopg.Transaction(conn)
            try:
                tx.__enter__()
                return lease, conn, tx
            except psycopg.OperationalError as exc:
                lease.__exit__(None, None, None)
                if (full := refused(exc, self._where, "the transaction")) is not None:
                    raise full from exc
                if not conn.broken:
                    raise
                pool.discard_idle()
                if attempt == 2:
                    raise StoreUnavailableError(
                        f"the connection to PostgreSQL at {self._where} was lost before a "
                        f"transaction began: {' '.join(str(exc).split())}"
                    ) from exc
            except BaseException:
                lease.__exit__(None, None, None)
                raise
        raise AssertionError("unreachable")

    def bind(self, conn: Any) -> Self:
        """An executor on a caller's own connection (a psycopg `Connection`, or a SQLAlchemy
        `Connection` or `Session` on the psycopg driver, whose transaction is begun): every
        operation runs in the caller's transaction, and the caller commits or rolls back. On
        a connection in autocommit mode with no transaction open, each operation commits by
        itself. A connection of another driver is a ConfigurationError. An executor of this
        store in a transaction is returned as it is (the operations join its transaction); any
        other Store is a ConfigurationError naming it."""
        if isinstance(conn, Store):
            return cast(Self, _joined(self, conn))
        return self._bound_to(Binding(caller_connection(conn), owned=False))

    def _bound_to(self, binding: Binding) -> Self:
        executor = copy.copy(self)
        executor._binding = binding
        executor.in_transaction = True
        return executor

    # --- running statements ------------------------------------------------------------
    def _current_pool(self) -> Pool:
        shared = self._shared
        with shared.lock:
            if shared.closed:
                raise StoreError(f"the store on {self._where} is closed")
            if shared.pid != os.getpid():
                # Forked: the parent's connections are not ours to use, nor to close.
                if shared.pool is not None:
                    shared.orphans.append(shared.pool)
                shared.pool, shared.pid = None, os.getpid()
            if shared.pool is None:
                shared.pool = Pool(self.conninfo, self.pool_settings, self._where)
            return shared.pool

    def _run(
        self,
        what: str,
        body: Callable[[Conn], T],
        *,
        idempotent: bool = True,
        transaction: bool = False,
        pipeline: bool = False,
        retries: int = 0,
    ) -> T:
        """Run `body` on this executor's connection. On the store itself: a pooled connection,
        in a transaction if asked (`pipeline`: BEGIN, the statements and COMMIT pipelined),
        retried once after a lost connection when that is safe (see _engine.py), and rerun up
        to `retries` times when it raises `Retry`. On a bound executor: in its transaction,
        as it is (pipelined if asked)."""
        binding = self._binding
        if binding is not None:
            return self._run_bound(binding, what, body, pipeline, transaction)
        for _ in range(retries):
            try:
                return self._run_pooled(what, body, idempotent, transaction, pipeline)
            except Retry:
                continue
        return self._run_pooled(what, body, idempotent, transaction, pipeline)

    def _run_pooled(
        self,
        what: str,
        body: Callable[[Conn], T],
        idempotent: bool,
        transaction: bool,
        pipeline: bool,
    ) -> T:
        pool = self._current_pool()
        for attempt in (1, 2):
            conn: Conn | None = None
            try:
                with pool.connection() as conn:
                    if pipeline:
                        with conn.pipeline():
                            if not transaction:
                                return body(conn)
                            with conn.transaction():
                                return body(conn)
                    if not transaction:
                        return body(conn)
                    with conn.transaction():
                        return body(conn)
            except psycopg.OperationalError as exc:
                if (full := refused(exc, self._where, what)) is not None:
                    raise full from exc
                if not _gone(conn, exc):
                    raise
                pool.discard_idle()
                aborted = exc.sqlstate is not None and exc.sqlstate.startswith("57")
                if attempt == 2 or not (idempotent or aborted):
                    cause = " ".join(str(exc).split())
                    if idempotent or aborted:
                        raise StoreUnavailableError(
                            f"the connection to PostgreSQL at {self._where} was lost during "
                            f"{what}: {cause}"
                        ) from exc
                    raise StoreError(
                        f"the connection to PostgreSQL at {self._where} was lost during "
                        f"{what}; it may or may not have applied: {cause}"
                    ) from exc
        raise AssertionError("unreachable")

    def _run_bound(
        self,
        binding: Binding,
        what: str,
        body: Callable[[Conn], T],
        pipeline: bool,
        transaction: bool = True,
    ) -> T:
        if not binding.open:
            raise StoreError(
                f"{what} on a store transaction that has ended: use the executor only inside "
                "its `with store.transaction()` block"
            )
        conn = binding.conn
        try:
            with binding.lock, contextlib.ExitStack() as stack:
                if pipeline:
                    stack.enter_context(conn.pipeline())
                if transaction and not binding.owned and _idle_autocommit(conn):
                    # no transaction to join: its own, as on the pool; an operation of one
                    # statement commits by itself, as on the pool (one round trip, not three)
                    stack.enter_context(conn.transaction())
                return body(conn)
        except psycopg.OperationalError as exc:
            raise self._lost(exc, binding, what) from exc

    def _lost(self, exc: psycopg.OperationalError, binding: Binding, what: str) -> Exception:
        """What a bound executor raises for `exc`: StoreFullError for a refusal, and
        StoreUnavailableError for a lost connection, whose transaction the server rolled back;
        any other OperationalError as it is."""
        if (full := refused(exc, self._where, what)) is not None:
            return full
        if not _gone(binding.conn, exc):
            return exc
        cause = " ".join(str(exc).split())
        if binding.owned:
            pool = self._shared.pool
            if pool is not None:
                pool.discard_idle()
            return StoreUnavailableError(
                f"the connection to PostgreSQL at {self._where} was lost during {what} inside a "
                f"transaction; nothing of the transaction was stored: {cause}"
            )
        return StoreUnavailableError(
            f"the caller's connection to PostgreSQL was lost during {what}; its open "
            f"transaction was rolled back by the server: {cause}"
        )

    def _hint(self, c: Conn, name: str) -> None:
        """Apply a transaction-local setting of queries.sql (`generic_plan`, `async_commit`)
        in an operation's own transaction. Skipped on a bound executor: there it would outlast
        the operation and change the rest of a transaction that is not the operation's."""
        if self._binding is None:
            c.execute(self._q[name])

    def _one(self, conn: Conn, name: str, params: dict[str, Any] | None = None) -> Any:
        row = conn.execute(self._q[name], params).fetchone()
        if row is None:
            raise StoreError(f"query {name} returned no row")
        return row

    def _scalar(self, name: str, params: dict[str, Any] | None = None, **how: bool) -> Any:
        return self._run(name, lambda c: self._one(c, name, params)[0], **how)

    def _rows(self, name: str, params: dict[str, Any] | None = None, **how: bool) -> list[Any]:
        query = self._q[name]
        return self._run(name, lambda c: c.execute(query, params).fetchall(), **how)

    def _count(self, name: str, params: dict[str, Any] | None = None, **how: bool) -> int:
        """Rows a statement changed (its rowcount)."""
        query = self._q[name]
        return int(self._run(name, lambda c: c.execute(query, params).rowcount, **how))

    def _exec(self, name: str, params: dict[str, Any] | None = None, **how: bool) -> None:
        query = self._q[name]
        self._run(name, lambda c: c.execute(query, params), **how)


def _idle_autocommit(conn: Conn) -> bool:
    """Whether a connection would commit each statement by itself (autocommit, no
    transaction open)."""
    return conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE


def _joined(store: PostgresCore, conn: Store) -> Store:
    """For `bind`: `conn` itself when it is an executor of `store`'s database in a transaction;
    else a ConfigurationError that names it."""
    if conn.engine != store.engine or conn.url != store.url:
        raise ConfigurationError(
            f"a transaction of the {conn.engine} store at {redact(conn.url)!r} cannot be used "
            f"with the PostgreSQL store at {store._where!r}: open it with this store's "
            "transaction()"
        )
    if not getattr(conn, "in_transaction", False):
        raise ConfigurationError(
            "a store is not a transaction: pass the executor that `with store.transaction() "
            "as tx:` yields, or a connection of your own"
        )
    return conn


# What libpq says when the server went away under a statement, before psycopg may have marked
# the connection broken (seen in pipeline mode while the server restarts).
_GONE = ("server closed the connection", "consuming input failed", "terminating connection")


def _gone(conn: Any, exc: psycopg.OperationalError) -> bool:
    """Whether `exc` means the connection is lost (so nothing of its transaction stays), and
    not a statement's own failure."""
    if conn is not None and conn.broken:
        return True
    text = str(exc)
    return any(mark in text for mark in _GONE)
