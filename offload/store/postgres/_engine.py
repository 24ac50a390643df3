"""PostgreSQL engine of the store contract.

A psycopg connection pool in autocommit mode: almost every operation is one statement (batches
are bound as arrays and unnested, counters and notifications ride along in CTEs), so it commits
without a BEGIN/COMMIT round trip; the few that need more than one statement run in an explicit
transaction. Every table is qualified with the store's schema, so the SQL runs unchanged on a
caller's connection whatever its search_path.

Times are double precision epoch seconds, as the contract speaks them, stamped by the database:
`offload_now()` is the start of the current statement, so one statement sees one time and every
machine the same clock. Statements that make jobs available `pg_notify` the store's channel once
per queue; listeners LISTEN on a connection of their own.

The operations are grouped in families, one module and one mixin each: `_jobs.py` (with its
insert in `_insert.py`), `_dispatch.py`, `_policy.py`, `_pauses.py`, `_maintenance.py`,
`_admin.py`, `_totals.py` and `_runtime.py`, all built on `_core.py`, which runs every statement
on an executor: the pool, a store transaction (`transaction()`) or a caller's connection
(`bind()`). A family uses another only through that family's module functions, which take the
executor.

Connections come from a pool of the engine's own (`_pool.py`), which connects in the caller's
thread: an operation while the server is down or out of connections fails at once with
`StoreUnavailableError` naming libpq's reason, and the first one after it answers again
connects. A connection lost under an operation (a restarted server, `pg_terminate_backend`, no
answer within the answer timeout) is dropped with the pool's other idle connections, and the
operation is retried once when that is safe: reads, and writes that are fenced or guarded by
state so that running them twice changes nothing more (a retried acknowledgement that had in
fact committed counts as stale). Other writes are retried only when the server reported that it
aborted them; otherwise they raise `StoreError`, since they may or may not have been applied.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from offload.store._contract import Listener, Store
from offload.store._sql import migrations
from offload.store.postgres import _dispatch as dispatch
from offload.store.postgres._admin import PostgresAdmin
from offload.store.postgres._bulk import PostgresBulk
from offload.store.postgres._core import Conn
from offload.store.postgres._dispatch import PostgresDispatch
from offload.store.postgres._events import PostgresEvents
from offload.store.postgres._jobs import PostgresJobs
from offload.store.postgres._listener import NotifyListener
from offload.store.postgres._maintenance import PostgresMaintenance
from offload.store.postgres._pauses import PostgresPauses
from offload.store.postgres._policy import PostgresPolicy
from offload.store.postgres._pool import AnswerTimeoutConnection
from offload.store.postgres._runtime import PostgresRunTime
from offload.store.postgres._sealed import PostgresSealed
from offload.store.postgres._totals import PostgresTotals
from offload.store.postgres._versions import PostgresVersions
from offload.store.postgres._workflows import PostgresWorkflows


class PostgresStore(
    PostgresJobs,
    PostgresDispatch,
    PostgresPolicy,
    PostgresPauses,
    PostgresMaintenance,
    PostgresAdmin,
    PostgresBulk,
    PostgresTotals,
    PostgresRunTime,
    PostgresEvents,
    PostgresVersions,
    PostgresWorkflows,
    PostgresSealed,
    Store,
):
    """The store in one schema of a PostgreSQL database, shared by workers on many machines."""

    engine = "postgres"

    # --- lifecycle ---------------------------------------------------------------------
    def migrate(self) -> list[int]:
        key = int.from_bytes(
            hashlib.blake2b(f"offload-migrate:{self.schema}".encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )

        def body(c: Conn) -> list[int]:
            if isinstance(c, AnswerTimeoutConnection):
                c.answer_timeout = 0  # a migration may take long (the pool resets it)
            c.execute(self._q["migrate_lock"], {"key": key})
            if not self._one(c, "schema_exists")[0]:
                c.execute(self._q["schema_create"])
            c.execute(self._q["migrate_search_path"])
            c.execute(self._q["migrations_table"])
            done = {row[0] for row in c.execute(self._q["migrations_applied"])}
            applied = []
            for version, name, text in migrations("postgres"):
                if version not in done:
                    c.execute(text)
                    c.execute(self._q["migration_record"], {"version": version, "name": name})
                    applied.append(version)
            return applied

        return self._run("migrate", body, transaction=True)

    def schema_version(self) -> int:
        def body(c: Conn) -> int:
            if not self._one(c, "migrations_exists")[0]:
                return 0
            return int(self._one(c, "migrations_version")[0])

        return self._run("schema_version", body)

    def close(self) -> None:
        if self._binding is not None:
            return  # an executor holds no connection of its own: its store closes the pool
        shared = self._shared
        with shared.lock:
            pool, shared.pool, shared.closed = shared.pool, None, True
        if pool is not None and shared.pid == os.getpid():
            pool.close()

    def now(self) -> float:
        return float(self._scalar("clock"))

    def oldest_transaction_age(self) -> float:
        """Seconds since the oldest transaction holding a snapshot in this database began (0:
        none). A long one keeps vacuum from removing the dead rows that every finished job
        leaves, so claims slowly read more of them: watch it (docs/postgres.md)."""
        return float(self._scalar("oldest_transaction"))

    def listener(self, queues: Sequence[str]) -> Listener:
        pool = self._current_pool()
        return NotifyListener(pool, self._q["listen"], queues, dispatch.alarm(self))
