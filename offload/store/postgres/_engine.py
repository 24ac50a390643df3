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
import logging
import os
import secrets
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from offload._errors import StoreError, StoreUnavailableError
from offload.store._codec import CLAIM_ROUNDS, dumps, read, report_buried
from offload.store._contract import (
    AckClaim,
    AckResult,
    ClaimedJob,
    ClaimParams,
    Completion,
    CronTick,
    Failure,
    Inserted,
    JobFilter,
    JobRecord,
    Lease,
    Listener,
    NewJob,
    QueueCount,
    RescueResult,
    Store,
    WorkerInfo,
)
from offload.store._policy import needs_policy
from offload.store._sql import migrations, queries
from offload.store.postgres._admin import PostgresAdmin
from offload.store.postgres._connect import (
    PoolSettings,
    async_caller_connection,
    caller_connection,
    parse_url,
    pool_settings,
    redact,
)
from offload.store.postgres._dispatch import PostgresDispatch
from offload.store.postgres._errors import refused
from offload.store.postgres._listener import NotifyListener
from offload.store.postgres._policy import PostgresPolicy
from offload.store.postgres._pool import AnswerTimeoutConnection, Pool
from offload.store.postgres._totals import PostgresTotals
from offload.store.postgres._values import json_text, lenient_json_text, plain_text

T = TypeVar("T")
Conn = psycopg.Connection[Any]
log = logging.getLogger("offload.store")
_JSONB_LIMIT = 200_000_000  # characters of a batch's JSON: a jsonb value holds < 256 MB
_INSERT_CHUNK = 10_000  # rows per insert statement; bigger batches take several, in one transaction


class _UniqueRace(StoreError):
    """The job holding a unique key vanished between the insert and the look-up of its id."""


class PostgresStore(PostgresAdmin, PostgresPolicy, PostgresDispatch, PostgresTotals, Store):
    """The store in one schema of a PostgreSQL database, shared by workers on many machines."""

    engine = "postgres"

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
        self._q = {name: self._expand(text) for name, text in queries("postgres").items()}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool: Pool | None = None
        self._orphans: list[Pool] = []
        self._closed = False

    def _expand(self, text: str) -> str:
        """Our own SQL with the (validated, quoted) schema and channel names put in."""
        schema = sql.Identifier(self.schema).as_string()
        channel = sql.Identifier(self.channel).as_string()
        return text.replace("{schema}", schema).replace("{channel}", channel)

    # --- connections -------------------------------------------------------------------
    def _current_pool(self) -> Pool:
        with self._lock:
            if self._closed:
                raise StoreError(f"the store on {self._where} is closed")
            if self._pid != os.getpid():
                # Forked: the parent's connections are not ours to use, nor to close.
                if self._pool is not None:
                    self._orphans.append(self._pool)
                self._pool, self._pid = None, os.getpid()
            if self._pool is None:
                self._pool = Pool(self.conninfo, self.pool_settings, self._where)
            return self._pool

    def _run(
        self,
        what: str,
        body: Callable[[Conn], T],
        *,
        idempotent: bool = True,
        transaction: bool = False,
    ) -> T:
        """Run `body` on a pooled connection (in a transaction if asked), retrying once after a
        lost connection when that is safe (see the module's docstring)."""
        pool = self._current_pool()
        for attempt in (1, 2):
            conn: Conn | None = None
            try:
                with pool.connection() as conn:
                    if not transaction:
                        return body(conn)
                    with conn.transaction():
                        return body(conn)
            except psycopg.OperationalError as exc:
                if (full := refused(exc, self._where, what)) is not None:
                    raise full from exc
                if conn is None or not conn.broken:
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

    def _one(self, conn: Conn, name: str, params: dict[str, Any] | None = None) -> Any:
        row = conn.execute(self._q[name], params).fetchone()
        if row is None:
            raise StoreError(f"query {name} returned no row")
        return row

    def _scalar(self, name: str, params: dict[str, Any] | None = None, **how: bool) -> Any:
        return self._run(name, lambda c: self._one(c, name, params)[0], **how)

    def _rows(self, name: str, params: dict[str, Any] | None = None) -> list[Any]:
        return self._run(name, lambda c: c.execute(self._q[name], params).fetchall())

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
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None and self._pid == os.getpid():
            pool.close()

    def now(self) -> float:
        return float(self._scalar("clock"))

    def oldest_transaction_age(self) -> float:
        """Seconds since the oldest transaction holding a snapshot in this database began (0:
        none). A long one keeps vacuum from removing the dead rows that every finished job
        leaves, so claims slowly read more of them: watch it (docs/postgres.md)."""
        return float(self._scalar("oldest_transaction"))

    def listener(self, queues: Sequence[str]) -> Listener:
        return NotifyListener(self._current_pool(), self._q["listen"], queues, self._limit_alarm())

    # --- jobs --------------------------------------------------------------------------
    def job_insert_many(self, jobs: Sequence[NewJob], conn: Any = None) -> list[Inserted]:
        if not jobs:
            return []
        if conn is not None:
            own = caller_connection(conn)
            try:
                if own.autocommit:
                    with own.transaction():
                        return self._insert(own, jobs)
                return self._insert(own, jobs)
            except psycopg.OperationalError as exc:
                if (full := refused(exc, self._where, "the enqueue")) is not None:
                    raise full from exc
                if not own.broken:
                    raise
                raise StoreError(
                    f"the caller's connection was lost while enqueuing: {exc}"
                ) from exc
        several = len(jobs) > _INSERT_CHUNK or any(j.unique_key is not None for j in jobs)
        several = several or needs_policy(jobs)  # its locks and stamps need a transaction
        several = several or any(j.limit_key is not None for j in jobs)  # keys declared first
        for _ in range(3):
            try:
                return self._run(
                    "job_insert_many",
                    lambda c: self._insert(c, jobs),
                    idempotent=False,
                    transaction=several,
                )
            except _UniqueRace:
                continue
        raise StoreError("jobs holding the unique keys being inserted kept vanishing; retry")

    async def job_insert_many_async(self, jobs: Sequence[NewJob], conn: Any) -> list[Inserted]:
        if not jobs:
            return []
        own = await async_caller_connection(conn)
        try:
            if own.autocommit:
                async with own.transaction():
                    return await self._insert_async(own, jobs)
            return await self._insert_async(own, jobs)
        except psycopg.OperationalError as exc:
            if (full := refused(exc, self._where, "the enqueue")) is not None:
                raise full from exc
            if not own.broken:
                raise
            raise StoreError(f"the caller's connection was lost while enqueuing: {exc}") from exc

    def _insert(self, c: Conn, jobs: Sequence[NewJob]) -> list[Inserted]:
        """Insert on `c`, in chunks; a job whose unique key is taken gets the holder's id."""
        steps = self._insert_steps(jobs)
        try:
            query, params = next(steps)
            while True:
                query, params = steps.send(c.execute(query, params).fetchall())
        except StopIteration as done:
            result: list[Inserted] = done.value
            return result

    async def _insert_async(
        self, c: psycopg.AsyncConnection[Any], jobs: Sequence[NewJob]
    ) -> list[Inserted]:
        """`_insert` through the async driver: the same statements, awaited."""
        steps = self._insert_steps(jobs)
        try:
            query, params = next(steps)
            while True:
                cursor = await c.execute(query, params)
                query, params = steps.send(await cursor.fetchall())
        except StopIteration as done:
            result: list[Inserted] = done.value
            return result

    def _insert_steps(
        self, jobs: Sequence[NewJob]
    ) -> Generator[tuple[str, dict[str, Any]], list[Any], list[Inserted]]:
        """The insert as statements to run: yields (query, params), is sent each one's rows,
        and returns the outcome, so that the sync and the async driver run the same logic."""
        if needs_policy(jobs):  # unique, expiring or shed at enqueue: see _policy.py
            return (yield from self._policy_insert_steps(jobs))
        declare = self._limit_declare_step(jobs)  # limit keys' rows: _dispatch.py
        if declare is not None:
            yield declare
        ids: list[int] = []
        if len(jobs) == 1 and _one_available(jobs[0]):
            rows = yield self._q["job_insert_one"], _one_params(jobs[0], self.channel)
            return [Inserted(int(rows[0][0]))]
        if all(j.unique_key is None and j.scheduled_at is None for j in jobs):
            for start in range(0, len(jobs), _INSERT_CHUNK):
                chunk = jobs[start : start + _INSERT_CHUNK]
                params = _rows_params(chunk, self.channel)
                query = self._q["job_insert_rows"]
                if len(params["rows"]) > _JSONB_LIMIT:  # too big for one jsonb: as arrays
                    query, params = self._q["job_insert"], _insert_params(chunk, self.channel)
                ids += [int(row[0]) for row in (yield query, params)]
            return [Inserted(job_id) for job_id in ids]
        fresh: list[bool] = []
        for start in range(0, len(jobs), _INSERT_CHUNK):
            params = _insert_params(jobs[start : start + _INSERT_CHUNK], self.channel)
            for job_id, inserted, _ in (yield self._q["job_insert"], params):
                ids.append(int(job_id))
                fresh.append(bool(inserted))
        holders: dict[str, int] = {}
        for job, job_id, inserted in zip(jobs, ids, fresh, strict=True):
            if inserted and job.unique_key is not None:
                holders.setdefault(job.unique_key, job_id)
        missing = {j.unique_key for j, ok in zip(jobs, fresh, strict=True) if not ok}
        missing -= holders.keys()
        if missing:
            keys = sorted(k for k in missing if k is not None)
            rows = yield self._q["job_ids_by_unique"], {"keys": keys}
            holders.update((key, int(job_id)) for key, job_id in rows)
        out = []
        for job, job_id, inserted in zip(jobs, ids, fresh, strict=True):
            if inserted:
                out.append(Inserted(job_id))
            elif job.unique_key in holders:
                out.append(Inserted(holders[job.unique_key], duplicate=True))
            else:
                raise _UniqueRace(f"the job holding unique key {job.unique_key!r} vanished")
        return out

    def job_claim(self, params: ClaimParams) -> list[ClaimedJob]:
        return self.job_ack_claim((), (), params).claimed

    def job_ack_claim(
        self,
        done: Sequence[Completion],
        failed: Sequence[Failure],
        claim: ClaimParams | None,
        durable: bool = True,
        started: Sequence[Lease] = (),
    ) -> AckClaim:
        acked, buried = self._ack_claim(done, failed, claim, durable, started)
        for _ in range(CLAIM_ROUNDS - 1):
            # The claim made rows dead (undecodable data): claim again for their places, so
            # that a short claim still means that the queues ran dry.
            if claim is None or not buried or len(acked.claimed) >= claim.limit:
                break
            taken = len(acked.claimed)
            start = None if claim.start is None else max(claim.start - taken, 0)
            rest = replace(claim, limit=claim.limit - taken, start=start)
            more, buried = self._ack_claim((), (), rest, durable, ())
            acked = replace(acked, claimed=acked.claimed + more.claimed)
        return acked

    def _ack_claim(
        self,
        done: Sequence[Completion],
        failed: Sequence[Failure],
        claim: ClaimParams | None,
        durable: bool,
        started: Sequence[Lease],
    ) -> tuple[AckClaim, int]:
        """One round of `job_ack_claim`; with how many rows the claim made dead."""
        queues = [] if claim is None or claim.limit <= 0 else list(dict.fromkeys(claim.queues))
        plain = bool(queues) and self._limited_queues().isdisjoint(queues)
        token = secrets.randbits(62)
        args = {}
        if claim is not None and plain:
            args = {
                "queues": queues,
                "limit": int(claim.limit),
                "worker_id": claim.worker_id,
                "token": token,
                "lease_seconds": float(claim.lease_seconds),
                "start": _start_count(claim),
                "everything": claim.start is None,
            }
        acks = bool(done or failed)
        complete = _complete_params(done, self.channel)
        fail = _fail_params(failed, self.channel)
        start = _lease_params(started)

        q = self._q

        def one(c: Conn) -> tuple[int, int, list[Any], set[int]]:
            """A lone statement: it commits by itself (autocommit), one round trip."""
            if done:
                return int(self._one(c, "job_complete", complete)[0]), 0, [], set()
            if failed:
                return 0, int(self._one(c, "job_fail", fail)[0]), [], set()
            if started:
                return 0, 0, [], {r[0] for r in c.execute(q["job_start"], start)}
            return 0, 0, c.execute(q["job_claim"], args).fetchall(), set()

        def cycle(c: Conn) -> tuple[int, int, list[Any], set[int]]:
            """Several statements in one transaction, pipelined: BEGIN, the statements and
            COMMIT cost two round trips, and the cycle one commit."""
            with c.pipeline(), c.transaction():
                c.execute(q["generic_plan"])
                if not durable:  # at-least-once jobs only: a lost cycle runs them again
                    c.execute(q["async_commit"])
                ca = c.execute(q["job_complete"], complete) if done else None
                cb = c.execute(q["job_fail"], fail) if failed else None
                cs = c.execute(q["job_start"], start) if started else None
                cc = c.execute(q["job_claim"], args) if args else None
                a = 0 if ca is None else int(ca.fetchone()[0])  # type: ignore[index]
                b = 0 if cb is None else int(cb.fetchone()[0])  # type: ignore[index]
                kept = set() if cs is None else {r[0] for r in cs.fetchall()}
                return a, b, [] if cc is None else cc.fetchall(), kept

        a = b = 0
        rows: list[Any] = []
        kept: set[int] = set()
        if acks or args or started:
            several = int(bool(done)) + int(bool(failed)) + int(bool(started)) + int(bool(args))
            a, b, rows, kept = self._run(
                "job_ack_claim" if acks or started else "job_claim",
                cycle if several > 1 or not durable else one,
                idempotent=False,
            )
        completed = AckResult(a, len(done) - a)
        fails = AckResult(b, len(failed) - b)
        lost = [lease.id for lease in started if lease.id not in kept]
        if claim is None or not queues:
            return AckClaim(completed, fails, [], lost), 0
        claimed, buried = self._claimed(claim, queues, token, plain, rows)
        return AckClaim(completed, fails, claimed, lost), buried

    def _claimed(
        self, params: ClaimParams, queues: list[str], token: int, plain: bool, rows: list[Any]
    ) -> tuple[list[ClaimedJob], int]:
        """The jobs of a claim from the rows `job_claim` returned (plain), topped up through
        limits when candidates with limit keys were left out (_dispatch.py); and how many rows
        it made dead instead."""
        if plain:
            if rows:  # column 18: candidates it left for the claim through limits
                limited = bool(rows[0][18])
                self._after_plain_claim(queues, rows, limited, len(rows) < params.limit)
                if limited and len(rows) < params.limit:
                    # Whatever the plain claim took counts against the slots to start.
                    rest = replace(
                        params,
                        limit=params.limit - len(rows),
                        start=None if params.start is None else max(params.start - len(rows), 0),
                    )
                    rows += self._claim_limited(rest, token, self._q["clock"])
            elif not self._scalar("job_claim_probe", {"queues": queues}):
                return [], 0
        if not rows:  # limit keys (or other claims) in the way: claim through limits
            rows = self._claim_limited(params, token, self._q["clock"])
        # Column 17: why the claim made a row dead instead of taking it (its stored data has
        # the wrong shape); it committed with the claim.
        buried = [(r[0], r[1], f"PayloadDecodeError: {r[17]}") for r in rows if r[17] is not None]
        if buried:
            rows = [r for r in rows if r[17] is None]
            self._count_buried(len(buried))
        rows.sort(key=lambda r: (-r[11], r[12], r[0]))
        jobs = report_buried(
            [
                ClaimedJob(
                    r[0],  # id
                    r[1],  # kind
                    r[2],  # queue
                    r[3],  # args
                    r[4],  # meta
                    r[5],  # attempt
                    r[6],  # max_attempts
                    r[7],  # delivery
                    r[8],  # timeout
                    r[9],  # lease_token
                    r[10],  # result_ttl
                    r[15],  # tenant
                    bool(r[16]),  # expired: past expires_at at the claim (_policy.py)
                    r[13],  # limit_key
                    r[19],  # started: its start recorded by this claim
                    r[20],  # isolated
                )
                for r in rows
            ],
            buried,
        )
        return jobs, len(buried)

    def _count_buried(self, n: int) -> None:
        """Count jobs a claim made dead for their undecodable data (the claim has committed:
        a failure here must not lose the jobs it took)."""
        try:
            self.counter_add("undecodable", n)
        except (StoreError, psycopg.Error) as exc:
            log.warning("could not count %d undecodable jobs (%s)", n, exc)

    def job_complete_many(self, done: Sequence[Completion]) -> AckResult:
        if not done:
            return AckResult(0, 0)
        applied = int(self._scalar("job_complete", _complete_params(done, self.channel)))
        return AckResult(applied, len(done) - applied)

    def job_fail_many(self, failed: Sequence[Failure]) -> AckResult:
        if not failed:
            return AckResult(0, 0)
        applied = int(self._scalar("job_fail", _fail_params(failed, self.channel)))
        return AckResult(applied, len(failed) - applied)

    def job_heartbeat(self, leases: Sequence[Lease], lease_seconds: float) -> list[int]:
        if not leases:
            return []
        params = {
            "ids": [lease.id for lease in leases],
            "tokens": [lease.token for lease in leases],
            "lease_seconds": float(lease_seconds),
        }
        kept = {(r[0], r[1]) for r in self._rows("job_heartbeat", params)}
        return [lease.id for lease in leases if (lease.id, lease.token) not in kept]

    def job_start_many(self, leases: Sequence[Lease]) -> list[int]:
        if not leases:
            return []
        kept = {r[0] for r in self._rows("job_start", _lease_params(leases))}
        return [lease.id for lease in leases if lease.id not in kept]

    def job_release_many(self, leases: Sequence[Lease]) -> int:
        if not leases:
            return 0
        params = {
            "ids": [lease.id for lease in leases],
            "tokens": [lease.token for lease in leases],
            "channel": self.channel,
        }
        return int(self._scalar("job_release", params))

    def job_rescue_expired(self, max_crashes: int) -> RescueResult:
        params = {"max_crashes": int(max_crashes), "channel": self.channel}
        row = self._run("job_rescue_expired", lambda c: self._one(c, "job_rescue_expired", params))
        return RescueResult(int(row[0]), int(row[1]), int(row[3]))

    def job_promote_due(self) -> int:
        return int(self._scalar("job_promote_due", {"channel": self.channel}))

    def job_get(self, job_id: int) -> JobRecord | None:
        rows = self._rows("job_get", {"id": job_id})
        return _record(rows[0]) if rows else None

    def job_list(self, flt: JobFilter) -> list[JobRecord]:
        params = {
            "states": None if flt.states is None else list(flt.states),
            "queue": flt.queue,
            "kind": flt.kind,
            "before_id": flt.before_id,
            "limit": int(flt.limit),
        }
        query, custom = self._q["job_list"], self._q["custom_plan"]

        def body(c: Conn) -> list[Any]:
            # Its optional filters want a plan for the values at hand: a generic one scans the
            # table backwards by id (seconds for a rare state among millions of jobs).
            with c.pipeline(), c.transaction():
                c.execute(custom)
                return c.execute(query, params).fetchall()

        return [_record(r) for r in self._run("job_list", body)]

    def job_retry(self, job_id: int) -> bool:
        return bool(self._scalar("job_retry", {"id": job_id, "channel": self.channel}))

    def job_cancel(self, job_id: int) -> bool:
        query = self._q["job_cancel"]
        return bool(self._run("job_cancel", lambda c: c.execute(query, {"id": job_id}).rowcount))

    def job_prune(self, dead_older_than: float) -> int:
        return int(self._scalar("job_prune", {"dead_older_than": float(dead_older_than)}))

    def job_counts(self) -> list[QueueCount]:
        return [QueueCount(q, s, int(n)) for q, s, n in self._rows("job_counts")]

    def job_finished_since(self, since: float) -> dict[str, int]:
        out = {"completed": 0, "dead": 0, "retryable": 0}
        for state, n in self._rows("job_finished_since", {"since": float(since)}):
            out[state] = int(n)
        return out

    # --- leadership, workers, cron, counters -------------------------------------------
    def leader_acquire(self, name: str, owner: str, ttl: float) -> bool:
        rows = self._rows("leader_acquire", {"name": name, "owner": owner, "ttl": float(ttl)})
        return bool(rows) and rows[0][0] == owner

    def leader_release(self, name: str, owner: str) -> None:
        self._rows_none("leader_release", {"name": name, "owner": owner})

    def worker_beat(self, info: WorkerInfo) -> None:
        params = {
            "id": info.id,
            "host": info.host,
            "pid": info.pid,
            "queues": dumps(list(info.queues)),
            "started_at": float(info.started_at),
            "running": info.running,
        }
        self._rows_none("worker_beat", params)

    def worker_remove(self, worker_id: str) -> None:
        self._rows_none("worker_remove", {"id": worker_id})

    def worker_list(self, seen_within: float) -> list[WorkerInfo]:
        rows = self._rows("worker_list", {"seen_within": float(seen_within)})
        return [WorkerInfo(r[0], r[1], r[2], list(r[3]), r[4], r[5], r[6]) for r in rows]

    def cron_last_tick(self, name: str) -> float | None:
        rows = self._rows("cron_last_tick", {"name": name})
        return float(rows[0][0]) if rows else None

    def cron_fire(self, tick: CronTick) -> bool:
        def body(c: Conn) -> bool:
            advance = {"name": tick.name, "tick": float(tick.tick)}
            if c.execute(self._q["cron_advance"], advance).fetchone() is None:
                return False
            self._insert(c, [tick.job])
            return True

        # Retrying is safe: the tick is recorded with the job, so it fires at most once.
        return self._run("cron_fire", body, transaction=True)

    def counter_add(self, name: str, amount: int) -> None:
        self._rows_none("counter_add", {"name": name, "amount": int(amount)}, idempotent=False)

    def counters(self) -> dict[str, int]:
        return {name: int(value) for name, value in self._rows("counters")}

    def _rows_none(self, name: str, params: dict[str, Any], idempotent: bool = True) -> None:
        query = self._q[name]
        self._run(name, lambda c: c.execute(query, params), idempotent=idempotent)


def _start_count(claim: ClaimParams) -> int:
    """How many of a claim's jobs go straight into free slots (ClaimParams.start)."""
    return int(claim.limit if claim.start is None else max(claim.start, 0))


def _lease_params(leases: Sequence[Lease]) -> dict[str, Any]:
    return {"ids": [lease.id for lease in leases], "tokens": [lease.token for lease in leases]}


def _complete_params(done: Sequence[Completion], channel: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "ids": [d.id for d in done],
        "tokens": [d.token for d in done],
        "results": [None if d.result is None else lenient_json_text(d.result) for d in done],
        "n": len(done),
    }


def _fail_params(failed: Sequence[Failure], channel: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "ids": [f.id for f in failed],
        "tokens": [f.token for f in failed],
        "errors": [plain_text(f.error) for f in failed],
        "tracebacks": [plain_text(f.traceback) for f in failed],
        "retry_in": [None if f.retry_in is None else float(f.retry_in) for f in failed],
        "n": len(failed),
    }


def _insert_params(jobs: Sequence[NewJob], channel: str) -> dict[str, Any]:
    """The columns of a batch of jobs as arrays, for the unnest in `job_insert`."""
    return {
        "kind": [j.kind for j in jobs],
        "queue": [j.queue for j in jobs],
        "args": [json_text(j.args, "arguments", j.args_json) for j in jobs],
        "meta": [json_text(j.meta, "meta") if j.meta else "{}" for j in jobs],
        "tenant": [j.tenant for j in jobs],
        "priority": [int(j.priority) for j in jobs],
        "max_attempts": [int(j.max_attempts) for j in jobs],
        "delivery": [j.delivery for j in jobs],
        "timeout": [None if j.timeout is None else float(j.timeout) for j in jobs],
        "at": [None if j.scheduled_at is None else float(j.scheduled_at) for j in jobs],
        "delay": [float(j.delay) for j in jobs],
        "unique_key": [j.unique_key for j in jobs],
        "result_ttl": [float(j.result_ttl) for j in jobs],
        "slo": [None if j.slo is None else float(j.slo) for j in jobs],
        "stride": [float(j.stride) for j in jobs],
        "limit_key": [j.limit_key for j in jobs],
        "channel": channel,
    }


def _one_available(job: NewJob) -> bool:
    """Whether `job_insert_one` takes it: available at once, no unique key."""
    return job.unique_key is None and job.scheduled_at is None and job.delay <= 0


def _one_params(j: NewJob, channel: str) -> dict[str, Any]:
    return {
        "kind": j.kind,
        "queue": j.queue,
        "args": json_text(j.args, "arguments", j.args_json),
        "meta": json_text(j.meta, "meta") if j.meta else "{}",
        "tenant": j.tenant,
        "flow_tenant": j.tenant or "",
        "priority": int(j.priority),
        "max_attempts": int(j.max_attempts),
        "delivery": j.delivery,
        "timeout": None if j.timeout is None else float(j.timeout),
        "delay": float(j.delay),
        "result_ttl": float(j.result_ttl),
        "slo": None if j.slo is None else float(j.slo),
        "stride": float(j.stride),
        "limit_key": j.limit_key,
        "channel": channel,
    }


def _rows_params(jobs: Sequence[NewJob], channel: str) -> dict[str, Any]:
    """A batch for `job_insert_rows` (jobs without unique key or scheduled_at): the jobs as
    one JSON array (null fields left out), each available job's flow and offset within it, and
    the flows' demands as arrays (offload/dispatch/_ordering.py)."""
    flows: dict[tuple[str, int, str, str], int] = {}
    flow_of: list[int] = [0] * len(jobs)  # 1-based; 0 for scheduled jobs
    for i, j in enumerate(jobs):
        if j.delay <= 0:
            key = (j.queue, int(j.priority), j.kind, j.tenant or "")
            flow = flows.get(key)
            if flow is None:
                flow = flows[key] = len(flows) + 1
            flow_of[i] = flow
    # Each flow's jobs take consecutive places in the order they became due (then input order).
    order: Sequence[int] = range(len(jobs))
    delays = {j.delay for j in jobs}
    if len(delays) > 1:
        order = sorted(order, key=lambda i: (jobs[i].delay, i))
    added = [0.0] * (len(flows) + 1)
    offsets = [0.0] * len(jobs)
    for i in order:
        flow = flow_of[i]
        if flow:
            offsets[i] = added[flow]
            added[flow] += float(jobs[i].stride)
    heads: dict[tuple[Any, ...], str] = {}  # the fields jobs of one type share, as JSON
    parts = []
    for i, j in enumerate(jobs):
        shape = (
            j.kind,
            j.queue,
            j.max_attempts,
            j.delivery,
            j.result_ttl,
            j.tenant,
            j.priority,
            j.timeout,
            j.slo,
            j.stride,
            j.limit_key,
        )
        head = heads.get(shape)
        if head is None:
            head = heads[shape] = _row_head(j)
        row = head + json_text(j.args, "arguments", j.args_json)
        if j.meta:
            row += f',"meta":{json_text(j.meta, "meta")}'
        if j.delay:
            row += f',"delay":{float(j.delay)!r}'
        if flow_of[i]:
            row += f',"flow":{flow_of[i]},"offset":{offsets[i]!r}}}'
        else:
            row += "}"
        parts.append(row)
    keys = list(flows)
    return {
        "rows": "[" + ",".join(parts) + "]",
        "flow_queue": [k[0] for k in keys],
        "flow_priority": [k[1] for k in keys],
        "flow_kind": [k[2] for k in keys],
        "flow_tenant": [k[3] for k in keys],
        "flow_added": added[1:],
        "channel": channel,
    }


def _row_head(j: NewJob) -> str:
    """The start of a job's object in `job_insert_rows`' JSON, up to its arguments."""
    head = (
        f'{{"kind":{dumps(j.kind)},"queue":{dumps(j.queue)},'
        f'"max_attempts":{int(j.max_attempts)},"delivery":{dumps(j.delivery)},'
        f'"result_ttl":{float(j.result_ttl)!r}'
    )
    if j.tenant is not None:
        head += f',"tenant":{dumps(j.tenant)}'
    if j.priority:
        head += f',"priority":{int(j.priority)}'
    if j.timeout is not None:
        head += f',"timeout":{float(j.timeout)!r}'
    if j.slo is not None:
        head += f',"slo":{float(j.slo)!r}'
    if j.stride != 1.0:
        head += f',"stride":{float(j.stride)!r}'
    if j.limit_key is not None:
        head += f',"limit_key":{dumps(j.limit_key)}'
    return head + ',"args":'


def _record(r: Sequence[Any]) -> JobRecord:
    """A row of job_get or job_list; its jsonb fields, decoded by psycopg, are checked for
    shape by store/_codec.py, which names any that is wrong."""
    values, undecodable = read(
        {"args": r[3], "meta": r[4], "errors": r[13], "result": r[19]}, decoded=True
    )
    return JobRecord(
        id=r[0],
        kind=r[1],
        queue=r[2],
        tenant=r[5],
        state=r[6],
        priority=r[7],
        attempt=r[8],
        max_attempts=r[9],
        crashes=r[10],
        delivery=r[11],
        timeout=r[12],
        scheduled_at=r[14],
        unique_key=r[15],
        lease_owner=r[16],
        lease_token=r[17],
        lease_expires_at=r[18],
        result_ttl=r[20],
        inserted_at=r[21],
        attempted_at=r[22],
        finished_at=r[23],
        order_key=r[24],
        deadline=r[25],
        limit_key=r[26],
        expires_at=r[27],
        undecodable=undecodable,
        **values,
    )
