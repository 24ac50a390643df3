"""SQLite engine of the store contract.

One connection per thread, WAL mode, `BEGIN IMMEDIATE` for every write so that writers queue on
the busy handler instead of failing half-way; a lock held past the busy timeout is retried and
only then surfaces as `StoreBusyError`. A damaged file surfaces as `StoreCorruptError` and a full
disk as `StoreFullError` (`_errors.py`), never as a raw driver error. The clock is this
machine's, which every process using the file shares.
"""

from __future__ import annotations

import heapq
import logging
import os
import secrets
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from offload._errors import ConfigurationError, PayloadDecodeError, StoreBusyError
from offload.dispatch._limits import Candidate, claim_order
from offload.dispatch._ordering import Arrival
from offload.store._codec import (
    CLAIM_ROUNDS,
    decode,
    dumps,
    error_entry,
    loads,
    read,
    report_buried,
    text,
)
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
from offload.store.sqlite._dispatch import SQLiteDispatch
from offload.store.sqlite._doorbell import Bell, Doorbell
from offload.store.sqlite._errors import CHECK_MODES, lost_wal_pages, quick_check, translate
from offload.store.sqlite._policy import SQLitePolicy
from offload.store.sqlite._totals import SQLiteTotals

T = TypeVar("T")
log = logging.getLogger("offload.store")
_NO_ACK = AckResult(0, 0)
_SYNC_LEVELS = ("off", "normal", "full", "extra")
_BELL_POLL_INTERVAL = 0.01  # with a doorbell, the data_version poll is only a fallback


def sqlite_path(url: str) -> tuple[str, dict[str, str]]:
    """The file path and options of a `sqlite:///path?synchronous=full&integrity_check=off`
    URL or a plain path."""
    if not url.startswith("sqlite:"):
        return url, {}
    parsed = urlparse(url)
    path = parsed.path
    if parsed.netloc:
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute/path.db"
        )
    if path.startswith("/"):
        path = path[1:]
    if not path:
        raise ConfigurationError(f"SQLite URL {url!r} names no file, e.g. sqlite:///jobs.db")
    options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    return path, options


class _DataVersionListener(Listener):
    """Wakes on a ring of the doorbell, or when a poll of `PRAGMA data_version` sees a commit."""

    def __init__(self, path: str, interval: float, bell: Bell | None) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._bell = bell
        # Rung commits wake at once; the poll only catches commits that ring no bell.
        self._interval = interval if bell is None else max(interval, _BELL_POLL_INTERVAL)
        self._version = self._read()

    def _read(self) -> int:
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            current = self._read()
            if current != self._version:
                self._version = current
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._bell is None:
                time.sleep(min(self._interval, left))
            elif select.select([self._bell], [], [], min(self._interval, left))[0]:
                self._bell.drain()
                self._version = self._read()
                return True

    def close(self) -> None:
        if self._bell is not None:
            self._bell.close()
        self._conn.close()


class SQLiteStore(SQLitePolicy, SQLiteDispatch, SQLiteTotals, Store):
    """The store on one SQLite file."""

    engine = "sqlite"

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 30.0,
        poll_interval: float = 0.002,
    ) -> None:
        self.url = url
        self.path, options = sqlite_path(url)
        synchronous = options.get("synchronous", "normal").lower()
        if synchronous not in _SYNC_LEVELS:
            raise ConfigurationError(
                f"synchronous={synchronous!r} in {url!r}: choose one of {', '.join(_SYNC_LEVELS)}"
            )
        self.synchronous = synchronous
        integrity_check = options.get("integrity_check", "quick").lower()
        if integrity_check not in CHECK_MODES:
            raise ConfigurationError(
                f"integrity_check={integrity_check!r} in {url!r}: choose one of "
                f"{', '.join(CHECK_MODES)}"
            )
        self.integrity_check = integrity_check
        self.busy_timeout = busy_timeout
        self.poll_interval = poll_interval
        self._q = queries("sqlite")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._doorbell = Doorbell(self.path)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ConfigurationError(f"the folder of SQLite file {self.path!r} does not exist")

    # --- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: connections of the parent are not ours
            self._local = threading.local()
            self._all = []
            self._pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        """A new connection in WAL mode with the URL's durability; a damaged file or a full
        disk raises its typed error here already."""
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(min(self.busy_timeout, 5.0) * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigurationError(f"SQLite file {self.path!r} cannot use WAL mode ({mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                self._raise_typed(exc)
            raise
        return conn

    def _raise_typed(self, exc: sqlite3.Error) -> None:
        """Raise the typed error for `exc` if it has one (the caller re-raises `exc` if not)."""
        typed = translate(exc, self.path)
        if typed is not None:
            raise typed from exc

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def check_integrity(self) -> None:
        """Before a worker or a command uses the file: say what a lost write-ahead log took
        with it, then run a bounded `PRAGMA quick_check` (unless the URL says
        `integrity_check=off`). A damaged file raises `StoreCorruptError`; a file that does not
        exist yet has nothing to check."""
        if not os.path.exists(self.path):
            return
        lost = lost_wal_pages(self.path)
        if lost:
            log.warning(
                "the write-ahead log of %s (%s-wal) is missing: %d committed pages that were "
                "not yet copied into the file are lost, so the last transactions before the "
                "stop (jobs enqueued, claimed or finished then) are undone; checking the file",
                self.path,
                self.path,
                lost,
            )
        if self.integrity_check == "off":
            return
        conn = self._connect()
        try:
            quick_check(conn, self.path)
        except sqlite3.Error as exc:
            self._raise_typed(exc)
            raise
        finally:
            conn.close()

    def _retrying(self, work: Callable[[], T]) -> T:
        """Run `work`, retrying while the database is locked, up to the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while True:
            try:
                return work()
            except sqlite3.Error as exc:
                self._raise_typed(exc)
                message = str(exc)
                if not isinstance(exc, sqlite3.OperationalError) or (
                    "locked" not in message and "busy" not in message
                ):
                    raise
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"SQLite file {self.path!r} stayed locked for {self.busy_timeout:.0f}s; "
                        "another process holds a long write transaction"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    @contextmanager
    def _write(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction: the caller's open one, or our own `BEGIN IMMEDIATE`."""
        if conn is not None:
            yield conn
            return
        own = self._conn()
        own.execute("BEGIN IMMEDIATE")
        try:
            yield own
            own.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (a full disk) may leave the transaction open, or SQLite may have
            # rolled it back already: either way none of it stays, and the connection is free.
            if own.in_transaction:
                with suppress(sqlite3.Error):
                    own.execute("ROLLBACK")
            raise

    def _tx(self, body: Callable[[sqlite3.Connection], T], conn: Any = None) -> T:
        def run() -> T:
            with self._write(conn) as c:
                return body(c)

        if conn is not None:
            try:
                return run()
            except sqlite3.Error as exc:
                self._raise_typed(exc)
                raise
        return self._retrying(run)

    def _rung(self, result: T, ring: bool) -> T:
        """Pass `result` through, having rung the doorbell if jobs became available."""
        if ring:
            self._doorbell.ring()
        return result

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return self._retrying(lambda: self._conn().execute(sql, params).fetchall())

    # --- lifecycle ---------------------------------------------------------------------
    def migrate(self) -> list[int]:
        def body(c: sqlite3.Connection) -> list[int]:
            c.execute(self._q["migrations_table"])
            done = {row[0] for row in c.execute(self._q["migrations_applied"])}
            applied = []
            for version, name, sql in migrations("sqlite"):
                if version in done:
                    continue
                for statement in _statements(sql):
                    c.execute(statement)
                c.execute(self._q["migration_record"], (version, name, time.time()))
                applied.append(version)
            return applied

        return self._tx(body)

    def schema_version(self) -> int:
        rows = self._read(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'offload_migrations'"
        )
        if not rows:
            return 0
        row = self._read("SELECT coalesce(max(version), 0) FROM offload_migrations")
        return int(row[0][0])

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

    def now(self) -> float:
        return time.time()

    def listener(self, queues: Sequence[str]) -> Listener:
        bell = self._doorbell.bell()
        try:
            return _DataVersionListener(self.path, self.poll_interval, bell)
        except sqlite3.Error as exc:
            if bell is not None:
                bell.close()
            self._raise_typed(exc)
            raise

    # --- jobs --------------------------------------------------------------------------
    def job_insert_many(self, jobs: Sequence[NewJob], conn: Any = None) -> list[Inserted]:
        if needs_policy(jobs):  # unique, expiring or shed at enqueue: see _policy.py
            return self._rung(self._insert_with_policy(jobs, conn), conn is None)
        now = self.now()
        rows: list[list[Any]] = []
        arrivals: list[Arrival] = []  # jobs available at once get their tags now
        tagged: list[int] = []  # their places in `rows`
        unique = limited = False
        for j in jobs:
            at = now + j.delay if j.scheduled_at is None else j.scheduled_at
            available = at <= now
            if available:
                tagged.append(len(rows))
                arrivals.append(Arrival(j.queue, j.priority, j.kind, j.tenant, j.stride, j.slo, at))
            rows.append(
                [
                    j.kind,
                    j.queue,
                    dumps(j.args) if j.args_json is None else j.args_json,
                    dumps(j.meta) if j.meta else "{}",
                    j.tenant,
                    "available" if available else "scheduled",
                    j.priority,
                    j.max_attempts,
                    j.delivery,
                    j.timeout,
                    at,
                    j.unique_key,
                    j.result_ttl,
                    now,
                    0.0,  # order_key: set below, or when promoted
                    j.slo,
                    None if j.stride == 1.0 else j.stride,
                    None if j.slo is None else at + j.slo,  # deadline
                    j.limit_key,
                ]
            )
            unique = unique or j.unique_key is not None
            limited = limited or j.limit_key is not None
        q = self._q

        def body(c: sqlite3.Connection) -> list[Inserted]:
            for i, t in zip(tagged, self._tag(c, arrivals), strict=True):
                rows[i][14] = t.order_key
            if limited:
                self._declare_limits(c, jobs, now)
            if not unique:
                # No row can conflict: one executemany, and the ids are the AUTOINCREMENT run
                # that ends at the last one (this transaction holds the write lock).
                c.executemany(q["job_insert_rows"], rows)
                last = int(c.execute(q["job_last_id"]).fetchone()[0])
                return [Inserted(i) for i in range(last - len(rows) + 1, last + 1)]
            out = []
            insert, by_unique = q["job_insert"], q["job_id_by_unique"]
            for job, row in zip(jobs, rows, strict=True):
                got = c.execute(insert, row).fetchone()
                if got is not None:
                    out.append(Inserted(int(got[0])))
                else:
                    existing = c.execute(by_unique, (job.unique_key,)).fetchone()
                    out.append(Inserted(int(existing[0]), duplicate=True))
            return out

        return self._rung(self._tx(body, conn), conn is None and bool(arrivals))

    def job_claim(self, params: ClaimParams) -> list[ClaimedJob]:
        if params.limit <= 0 or not params.queues:
            return []
        probe = self._q["job_claim_any"]  # outside the write lock: an empty queue takes none
        if not any(self._read(probe, (q,)) for q in params.queues):
            return []
        buried: list[tuple[int, str, str]] = []

        def body(c: sqlite3.Connection) -> list[ClaimedJob]:
            buried.clear()  # a busy database runs the body again
            return self._claim(c, params, self.now(), buried)

        return report_buried(self._tx(body), buried)

    def job_ack_claim(
        self,
        done: Sequence[Completion],
        failed: Sequence[Failure],
        claim: ClaimParams | None,
        durable: bool = True,
        started: Sequence[Lease] = (),
    ) -> AckClaim:
        if not done and not failed and not started:
            return AckClaim(_NO_ACK, _NO_ACK, [] if claim is None else self.job_claim(claim))

        buried: list[tuple[int, str, str]] = []

        def body(c: sqlite3.Connection) -> AckClaim:
            buried.clear()  # a busy database runs the body again
            now = self.now()
            a = self._complete(c, done, now)
            b = self._fail(c, failed, now)
            lost = self._start(c, started)
            claimed = [] if claim is None else self._claim(c, claim, now, buried)
            return AckClaim(a, b, claimed, lost)

        acked = self._tx(body)
        report_buried(acked.claimed, buried)
        return acked

    def job_start_many(self, leases: Sequence[Lease]) -> list[int]:
        if not leases:
            return []
        return self._tx(lambda c: self._start(c, leases))

    def _start(self, c: sqlite3.Connection, leases: Sequence[Lease]) -> list[int]:
        if not leases:
            return []
        batch = dumps([[lease.id, lease.token] for lease in leases])
        kept = {row[0] for row in c.execute(self._q["job_start"], (batch,))}
        return [lease.id for lease in leases if lease.id not in kept]

    def _claim(
        self,
        c: sqlite3.Connection,
        params: ClaimParams,
        now: float,
        buried: list[tuple[int, str, str]],
    ) -> list[ClaimedJob]:
        """Claim in the transaction of `c`. A claimed row that cannot be decoded ends dead in
        this same transaction (appended to `buried`, for the caller to log once committed),
        and every other one is handed out; the claim goes on for the places such rows took,
        so that a short claim still means that the queues ran dry."""
        jobs: list[ClaimedJob] = []
        for _ in range(CLAIM_ROUNDS):
            seen = len(buried)
            rest = params
            if jobs:
                start = None if params.start is None else max(params.start - len(jobs), 0)
                rest = replace(params, limit=params.limit - len(jobs), start=start)
            jobs += self._claim_once(c, rest, now, buried)
            if len(buried) == seen or len(jobs) >= params.limit:
                break
        return jobs

    def _claim_once(
        self,
        c: sqlite3.Connection,
        params: ClaimParams,
        now: float,
        buried: list[tuple[int, str, str]],
    ) -> list[ClaimedJob]:
        if params.limit <= 0 or not params.queues:
            return []
        candidates_sql = self._q["job_claim_candidates"]
        # rows: id, queue, priority, order_key, limit_key; queues with none are left out
        first = {}
        for q in dict.fromkeys(params.queues):
            rows = c.execute(candidates_sql, (q, params.limit)).fetchall()
            if rows:
                first[q] = rows
        queues = list(first)
        if not queues:
            return []
        pool = [r for rows in first.values() for r in rows]
        limited = any(r[4] is not None for r in pool)
        if limited:  # limits: see dispatch/_limits.py
            pages = {q: [Candidate(*r) for r in rows] for q, rows in first.items()}
            chosen = self._plan_claim(c, queues, params.limit, now, pages).chosen
            ids = [x.id for x in sorted(chosen, key=claim_order)]
        else:
            if len(queues) > 1:
                pool = heapq.nsmallest(params.limit, pool, key=lambda r: (-r[2], r[3], r[0]))
            ids = [r[0] for r in pool]
        if not ids:
            return []
        token = secrets.randbits(62)
        starting = ids if params.start is None else ids[: max(params.start, 0)]
        cursor = c.execute(
            self._q["job_claim_update"],
            (
                params.worker_id,
                token,
                now + params.lease_seconds,
                now,
                dumps(ids),
                dumps(starting) if starting else "[]",
                params.start is None,  # every job starts at once, isolated ones too
            ),
        )
        try:
            claimed = cursor.fetchall()
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
            # A TEXT column holds bytes that are not UTF-8. The update is done (SQLite applies
            # it at the first step): read the claimed rows again with such columns as blobs.
            claimed = c.execute(self._q["job_claim_raw"], (dumps(ids), token)).fetchall()
        self._advance_lanes(c, claimed, limited, len(claimed) < params.limit)
        claimed.sort(key=lambda r: (-r[11], r[12], r[0]))
        jobs = []
        for r in claimed:
            try:
                jobs.append(_claimed(r, now))
            except PayloadDecodeError as exc:
                error = f"PayloadDecodeError: {exc}"
                entry = error_entry(0, now, error, "", "undecodable")
                c.execute(self._q["job_dead_undecodable"], (now, entry, r[0], token))
                buried.append((r[0], _kind_of(r[1]), error))
        if len(jobs) < len(claimed):
            c.execute(self._q["counter_add"], ("undecodable", len(claimed) - len(jobs)))
        return jobs

    def job_complete_many(self, done: Sequence[Completion]) -> AckResult:
        if not done:
            return _NO_ACK
        return self._tx(lambda c: self._complete(c, done, self.now()))

    def _complete(self, c: sqlite3.Connection, done: Sequence[Completion], now: float) -> AckResult:
        if not done:
            return _NO_ACK
        batch = dumps(
            [[d.id, d.token, None if d.result is None else dumps(d.result)] for d in done]
        )
        applied = c.execute(self._q["job_complete"], (now, batch)).rowcount
        stale = len(done) - applied
        if stale:
            c.execute(self._q["counter_add"], ("stale_acks", stale))
        return AckResult(applied, stale)

    def job_fail_many(self, failed: Sequence[Failure]) -> AckResult:
        if not failed:
            return _NO_ACK
        return self._tx(lambda c: self._fail(c, failed, self.now()))

    def _fail(self, c: sqlite3.Connection, failed: Sequence[Failure], now: float) -> AckResult:
        if not failed:
            return _NO_ACK
        batch = dumps(
            [
                [
                    f.id,
                    f.token,
                    None if f.retry_in is None else now + f.retry_in,
                    error_entry(0, now, f.error, f.traceback, "error"),
                ]
                for f in failed
            ]
        )
        applied = c.execute(self._q["job_fail"], (now, batch)).rowcount
        stale = len(failed) - applied
        if stale:
            c.execute(self._q["counter_add"], ("stale_acks", stale))
        return AckResult(applied, stale)

    def job_heartbeat(self, leases: Sequence[Lease], lease_seconds: float) -> list[int]:
        if not leases:
            return []
        sql = self._q["job_heartbeat"]
        batch = dumps([[lease.id, lease.token] for lease in leases])

        def body(c: sqlite3.Connection) -> list[int]:
            kept = {row[0] for row in c.execute(sql, (self.now() + lease_seconds, batch))}
            return [lease.id for lease in leases if lease.id not in kept]

        return self._tx(body)

    def job_release_many(self, leases: Sequence[Lease]) -> int:
        if not leases:
            return 0
        sql = self._q["job_release"]

        def body(c: sqlite3.Connection) -> int:
            now = self.now()
            return sum(c.execute(sql, (now, lease.id, lease.token)).rowcount for lease in leases)

        released = self._tx(body)
        return self._rung(released, released > 0)

    def job_rescue_expired(self, max_crashes: int) -> RescueResult:
        q = self._q

        def body(c: sqlite3.Connection) -> RescueResult:
            now = self.now()
            requeued = dead = uncharged = 0
            for job_id, delivery, crashes, _attempt, unstarted in c.execute(
                q["job_rescue_select"], (now,)
            ).fetchall():
                if unstarted:  # held, its start never recorded: no crash to charge
                    n = c.execute(q["job_rescue_unstarted"], (now, job_id)).rowcount
                    requeued += n
                    uncharged += n
                elif delivery == "at_most_once":
                    entry = error_entry(0, now, "abandoned", "", "crash")
                    dead += c.execute(q["job_rescue_dead"], (now, entry, job_id)).rowcount
                elif crashes + 1 >= max_crashes:
                    message = (
                        f"abandoned: its worker was lost {crashes + 1} times while running it "
                        "(a job that crashes its worker is stopped here)"
                    )
                    entry = error_entry(0, now, message, "", "crash")
                    dead += c.execute(q["job_rescue_dead"], (now, entry, job_id)).rowcount
                else:
                    entry = error_entry(0, now, "worker lost: lease expired", "", "crash")
                    requeued += c.execute(q["job_rescue_requeue"], (now, entry, job_id)).rowcount
            if requeued:
                c.execute(q["counter_add"], ("rescued", requeued))
            if dead:
                c.execute(q["counter_add"], ("abandoned", dead))
            return RescueResult(requeued, dead, uncharged)

        result = self._tx(body)
        return self._rung(result, result.requeued > 0)

    def job_promote_due(self) -> int:
        next_due = self._read(self._q["job_next_due"])[0][0]
        if next_due is None or next_due > self.now():
            return 0
        promoted = self._tx(lambda c: self._promote(c, self.now()))  # tags them: _dispatch.py
        return self._rung(promoted, promoted > 0)

    def job_get(self, job_id: int) -> JobRecord | None:
        rows = self._read(self._q["job_get"], (job_id,))
        return _record(rows[0]) if rows else None

    def job_list(self, flt: JobFilter) -> list[JobRecord]:
        params = {
            "states": None if flt.states is None else dumps(list(flt.states)),
            "queue": flt.queue,
            "kind": flt.kind,
            "before_id": flt.before_id,
            "limit": flt.limit,
        }
        return [_record(r) for r in self._read(self._q["job_list"], params)]

    def job_retry(self, job_id: int) -> bool:
        sql = self._q["job_retry"]
        retried = bool(self._tx(lambda c: c.execute(sql, (self.now(), job_id)).rowcount))
        return self._rung(retried, retried)

    def job_cancel(self, job_id: int) -> bool:
        sql = self._q["job_cancel"]
        return bool(self._tx(lambda c: c.execute(sql, (self.now(), job_id)).rowcount))

    def job_prune(self, dead_older_than: float) -> int:
        q = self._q

        def body(c: sqlite3.Connection) -> int:
            now = self.now()
            gone = c.execute(q["job_prune_completed"], (now,)).fetchall()
            self._prune_flows(c)
            gone += c.execute(q["job_prune_final"], (now - dead_older_than,)).fetchall()
            self._keep(c, gone)  # what they counted stays in the totals (_totals.py)
            return len(gone)

        return self._tx(body)

    def job_counts(self) -> list[QueueCount]:
        return [QueueCount(q, s, n) for q, s, n in self._read(self._q["job_counts"])]

    def job_finished_since(self, since: float) -> dict[str, int]:
        out = {"completed": 0, "dead": 0, "retryable": 0}
        for state, n in self._read(self._q["job_finished_since"], (since,)):
            out[state] = n
        out["retryable"] = self._read(self._q["job_retryable_since"], (since,))[0][0]
        return out

    # --- leadership, workers, cron, counters -------------------------------------------
    def leader_acquire(self, name: str, owner: str, ttl: float) -> bool:
        sql = self._q["leader_acquire"]

        def body(c: sqlite3.Connection) -> bool:
            now = self.now()
            row = c.execute(sql, (name, owner, now + ttl, now)).fetchone()
            return row is not None and row[0] == owner

        return self._tx(body)

    def leader_release(self, name: str, owner: str) -> None:
        sql = self._q["leader_release"]
        self._tx(lambda c: c.execute(sql, (name, owner)))

    def worker_beat(self, info: WorkerInfo) -> None:
        sql = self._q["worker_beat"]
        row = (
            info.id,
            info.host,
            info.pid,
            dumps(info.queues),
            info.started_at,
            self.now(),
            info.running,
        )
        self._tx(lambda c: c.execute(sql, row))

    def worker_remove(self, worker_id: str) -> None:
        sql = self._q["worker_remove"]
        self._tx(lambda c: c.execute(sql, (worker_id,)))

    def worker_list(self, seen_within: float) -> list[WorkerInfo]:
        rows = self._read(self._q["worker_list"], (self.now() - seen_within,))
        return [WorkerInfo(r[0], r[1], r[2], loads(r[3]), r[4], r[5], r[6]) for r in rows]

    def cron_last_tick(self, name: str) -> float | None:
        rows = self._read(self._q["cron_last_tick"], (name,))
        return float(rows[0][0]) if rows else None

    def cron_fire(self, tick: CronTick) -> bool:
        q = self._q

        def body(c: sqlite3.Connection) -> bool:
            if c.execute(q["cron_advance"], (tick.name, tick.tick)).fetchone() is None:
                return False
            self.job_insert_many([tick.job], conn=c)
            return True

        return self._tx(body)

    def counter_add(self, name: str, amount: int) -> None:
        sql = self._q["counter_add"]
        self._tx(lambda c: c.execute(sql, (name, amount)))

    def counters(self) -> dict[str, int]:
        return {name: value for name, value in self._read(self._q["counters"])}


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons inside literals)."""
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def _claimed(r: Sequence[Any], now: float) -> ClaimedJob:
    """A claimed row as a job to run; `PayloadDecodeError` when a field cannot be decoded (text
    columns may come as bytes: see `job_claim_raw`)."""
    return ClaimedJob(
        r[0],  # id
        text("kind", r[1]),  # type: ignore[arg-type]  # NOT NULL
        r[2],  # queue: matched the claim's queue name, so it is text
        decode("args", r[3]),
        {} if r[4] == "{}" else decode("meta", r[4]),  # meta, most often empty
        r[5],  # attempt
        r[6],  # max_attempts
        text("delivery", r[7]),  # type: ignore[arg-type]  # NOT NULL
        r[8],  # timeout
        r[9],  # lease_token
        r[10],  # result_ttl
        text("tenant", r[15]),
        r[16] is not None and r[16] <= now,  # expired (_policy.py)
        text("limit_key", r[13]),
        bool(r[17]),  # started: its start recorded by this claim
        bool(r[18]),  # isolated
    )


def _kind_of(stored: object) -> str:
    """A job type name for a log line, whatever the column holds."""
    if isinstance(stored, bytes):
        return stored.decode("utf-8", "replace")
    return str(stored)


def _record(r: Sequence[Any]) -> JobRecord:
    """A row of job_get or job_list, its text columns as blobs (store/_codec.py decodes them,
    and names any field it cannot decode)."""
    values, undecodable = read(
        {
            "kind": r[1],
            "queue": r[2],
            "args": r[3],
            "meta": r[4],
            "tenant": r[5],
            "state": r[6],
            "delivery": r[11],
            "errors": r[13],
            "unique_key": r[15],
            "lease_owner": r[16],
            "result": r[19],
            "limit_key": r[26],
        },
        decoded=False,
    )
    return JobRecord(
        id=r[0],
        priority=r[7],
        attempt=r[8],
        max_attempts=r[9],
        crashes=r[10],
        timeout=r[12],
        scheduled_at=r[14],
        lease_token=r[17],
        lease_expires_at=r[18],
        result_ttl=r[20],
        inserted_at=r[21],
        attempted_at=r[22],
        finished_at=r[23],
        order_key=r[24],
        deadline=r[25],
        expires_at=r[27],
        undecodable=undecodable,
        **values,
    )
