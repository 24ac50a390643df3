"""The SQLite engine's jobs family: insert, claim, acknowledge, heartbeat, start and release.

The worker's cycle (`job_ack_claim`) stays one transaction of a few statements: it composes
this module's functions, which take the transaction's connection, rather than operations that
would each open their own. The other families are reached through their modules' functions
(`_dispatch.tag`, `_dispatch.plan_claim` ...), never through a mixin's private method.
"""

from __future__ import annotations

import heapq
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from offload._errors import PayloadDecodeError
from offload.dispatch._limits import Candidate, claim_order
from offload.dispatch._ordering import Arrival, ClockWrites
from offload.store._codec import (
    CLAIM_ROUNDS,
    decode,
    dumps,
    error_entry,
    report_buried,
    text,
)
from offload.store._contract import (
    AckClaim,
    AckResult,
    ClaimedJob,
    ClaimParams,
    Completion,
    Failure,
    Inserted,
    Lease,
    NewJob,
)
from offload.store._policy import needs_policy
from offload.store._sql import queries
from offload.store.sqlite import _dispatch as dispatch
from offload.store.sqlite import _policy as policy
from offload.store.sqlite import _workflows as workflows
from offload.store.sqlite._doorbell import Doorbell
from offload.store.sqlite._long import SQLiteLongJobs
from offload.store.sqlite._pauses import pauses_sql

NO_ACK = AckResult(0, 0)


@dataclass(slots=True)
class Rows:
    """Jobs as rows to insert, made before the transaction: the rows, the arrivals of the
    jobs available at once (tagged in it) and their places, and whether any row holds a
    unique key or a limit key."""

    jobs: Sequence[NewJob]
    rows: list[list[Any]]
    arrivals: list[Arrival]
    tagged: list[int]
    unique: bool
    limited: bool
    now: float


# From this many rows on, an insert counts its rows in one statement after it instead of one
# trigger upsert per row (0019_count_batches.sql).
COUNTED_APART = 16


def rows_of(jobs: Sequence[NewJob], now: float) -> Rows:
    """The insert rows of plain jobs (no policy), available or scheduled by `now`."""
    rows: list[list[Any]] = []
    arrivals: list[Arrival] = []  # jobs available at once get their tags in the transaction
    tagged: list[int] = []  # their places in `rows`
    unique = limited = False
    for j in jobs:
        at = now + j.delay if j.scheduled_at is None else j.scheduled_at
        available = at <= now
        if available:
            tagged.append(len(rows))
            arrivals.append(
                Arrival(j.queue, j.priority, j.kind, j.tenant, j.stride, j.slo, at, j.penalty)
            )
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
                None,  # start_tag: set in the transaction, or when promoted
                j.slo,
                None if j.stride == 1.0 else j.stride,
                None if j.slo is None else at + j.slo,  # deadline
                j.limit_key,
                j.version,
            ]
        )
        unique = unique or j.unique_key is not None
        limited = limited or j.limit_key is not None
    return Rows(jobs, rows, arrivals, tagged, unique, limited, now)


def insert_rows(c: sqlite3.Connection, r: Rows) -> list[Inserted]:
    """Insert prepared rows in the transaction of `c`: fair-queuing tags and limit keys first,
    then one executemany when no row can conflict, else row by row (a taken unique key gives
    the holder's id, as a duplicate)."""
    q = queries("sqlite")
    rows = r.rows
    for i, t in zip(r.tagged, dispatch.tag(c, r.arrivals), strict=True):
        rows[i][14] = t.start
    if r.limited:
        dispatch.declare_limits(c, r.jobs, r.now)
    if not r.unique:
        # No row can conflict: one executemany, and the ids are the AUTOINCREMENT run that
        # ends at the last one (this transaction holds the write lock).
        if len(rows) < COUNTED_APART:  # a few rows: the trigger counts them for less
            c.executemany(q["job_insert_rows"], rows)
            last = int(c.execute(q["job_last_id"]).fetchone()[0])
            return [Inserted(i) for i in range(last - len(rows) + 1, last + 1)]
        before = int(c.execute(q["job_max_id"]).fetchone()[0])
        c.execute(q["count_batch_begin"])
        try:
            c.executemany(q["job_insert_rows"], rows)
            last = int(c.execute(q["job_last_id"]).fetchone()[0])
        finally:  # whatever was inserted is counted, even by a batch cut short
            c.execute(q["count_batch_end"])
            c.execute(q["count_batch_add"], (before,))
        return [Inserted(i) for i in range(last - len(rows) + 1, last + 1)]
    out = []
    insert, by_unique = q["job_insert"], q["job_id_by_unique"]
    for job, row in zip(r.jobs, rows, strict=True):
        got = c.execute(insert, row).fetchone()
        if got is not None:
            out.append(Inserted(int(got[0])))
        else:
            existing = c.execute(by_unique, (job.unique_key,)).fetchone()
            out.append(Inserted(int(existing[0]), duplicate=True))
    return out


def insert(c: sqlite3.Connection, jobs: Sequence[NewJob], now: float) -> list[Inserted]:
    """Insert plain jobs (no policy) in the transaction of `c`."""
    return insert_rows(c, rows_of(jobs, now))


def correlate(
    c: sqlite3.Connection, jobs: Sequence[NewJob], inserted: list[Inserted]
) -> list[Inserted]:
    """Store the parent and root of jobs enqueued by a running job (docs/workflows.md)."""
    if jobs and jobs[0].parent_id is None and all(j.parent_id is None for j in jobs):
        return inserted
    related = [
        [i.id, j.parent_id, j.root_id if j.root_id is not None else j.parent_id]
        for j, i in zip(jobs, inserted, strict=True)
        if j.parent_id is not None and not i.duplicate
    ]
    if related:
        c.execute(workflows.wf_sql()["job_correlate"], (dumps(related),))
    return inserted


def complete(c: sqlite3.Connection, done: Sequence[Completion], now: float) -> AckResult:
    """Complete running jobs whose lease token matches; count the others stale."""
    if not done:
        return NO_ACK
    q = queries("sqlite")
    batch = dumps([[d.id, d.token, None if d.result is None else dumps(d.result)] for d in done])
    applied = c.execute(q["job_complete"], (now, batch)).rowcount
    stale = len(done) - applied
    if stale:
        c.execute(q["counter_add"], ("stale_acks", stale))
    steps = [d.id for d in done if d.step is not False]
    if steps:  # workflows' steps: what they unblock commits with them
        workflows.advance_jobs(c, steps, now)
    return AckResult(applied, stale)


def fail(c: sqlite3.Connection, failed: Sequence[Failure], now: float) -> AckResult:
    """Record failed attempts of running jobs whose lease token matches."""
    if not failed:
        return NO_ACK
    q = queries("sqlite")
    batch = dumps(
        [
            [
                f.id,
                f.token,
                None if f.retry_in is None else now + f.retry_in,
                error_entry(0, now, f.error, f.traceback, "throttled" if f.throttled else "error"),
                int(f.throttled),
            ]
            for f in failed
        ]
    )
    applied = c.execute(q["job_fail"], (now, batch)).rowcount
    stale = len(failed) - applied
    if stale:
        c.execute(q["counter_add"], ("stale_acks", stale))
    steps = [f.id for f in failed if f.retry_in is None and f.step is not False]
    if steps:  # dead workflows' steps: what that causes commits with them
        workflows.advance_jobs(c, steps, now)
    return AckResult(applied, stale)


def start(c: sqlite3.Connection, leases: Sequence[Lease]) -> list[int]:
    """Record the start of held jobs; the ids whose lease was lost."""
    if not leases:
        return []
    batch = dumps([[lease.id, lease.token] for lease in leases])
    kept = {row[0] for row in c.execute(queries("sqlite")["job_start"], (batch,))}
    return [lease.id for lease in leases if lease.id not in kept]


@dataclass(slots=True)
class Claimer:
    """What a claim needs of its store beside the connection: the doorbell (rate tokens due
    later ring it) and the record of when lane clocks are written."""

    doorbell: Doorbell
    writes: ClockWrites


def claim_jobs(
    c: sqlite3.Connection,
    params: ClaimParams,
    now: float,
    buried: list[tuple[int, str, str]],
    claimer: Claimer,
) -> list[ClaimedJob]:
    """Claim in the transaction of `c`. A claimed row that cannot be decoded ends dead in this
    same transaction (appended to `buried`, for the caller to log once committed), and every
    other one is handed out; the claim goes on for the places such rows took, so that a short
    claim still means that the queues ran dry."""
    jobs: list[ClaimedJob] = []
    for _ in range(CLAIM_ROUNDS):
        seen = len(buried)
        rest = params
        if jobs:
            begin = None if params.start is None else max(params.start - len(jobs), 0)
            rest = replace(params, limit=params.limit - len(jobs), start=begin)
        jobs += _claim_once(c, rest, now, buried, claimer)
        if len(buried) == seen or len(jobs) >= params.limit:
            break
    return jobs


def _claim_once(
    c: sqlite3.Connection,
    params: ClaimParams,
    now: float,
    buried: list[tuple[int, str, str]],
    claimer: Claimer,
) -> list[ClaimedJob]:
    if params.limit <= 0 or not params.queues:
        return []
    q = queries("sqlite")
    candidates_sql = q["job_claim_candidates"]
    # rows: id, queue, priority, order_key, limit_key; queues with none are left out
    first = {}
    skip = dumps(sorted(params.skip_kinds)) if params.skip_kinds else None
    for name in dict.fromkeys(params.queues):
        if skip is None:
            rows = c.execute(candidates_sql, (name, params.limit)).fetchall()
        else:  # some kind is paused: the variant that leaves its jobs out (_pauses.py)
            unpaused = {"queue": name, "kinds": skip, "n": params.limit}
            rows = c.execute(pauses_sql()["job_claim_candidates_unpaused"], unpaused).fetchall()
        if rows:
            first[name] = rows
    queues = list(first)
    if not queues:
        return []
    pool = [r for rows in first.values() for r in rows]
    limited = any(r[4] is not None for r in pool)
    if limited:  # limits: see dispatch/_limits.py
        pages = {name: [Candidate(*r) for r in rows] for name, rows in first.items()}
        chosen = dispatch.plan_claim(
            c, queues, params.limit, now, pages, claimer.doorbell, params.skip_kinds
        ).chosen
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
        q["job_claim_update"],
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
        # A TEXT column holds bytes that are not UTF-8. The update is done (SQLite applies it
        # at the first step): read the claimed rows again with such columns as blobs.
        claimed = c.execute(q["job_claim_raw"], (dumps(ids), token)).fetchall()
    dispatch.advance_lanes(c, claimer.writes, claimed, limited, len(claimed) < params.limit)
    claimed.sort(key=lambda r: (-r[11], r[12], r[0]))
    jobs = []
    for r in claimed:
        try:
            jobs.append(_claimed(r, now))
        except PayloadDecodeError as exc:
            error = f"PayloadDecodeError: {exc}"
            entry = error_entry(0, now, error, "", "undecodable")
            c.execute(q["job_dead_undecodable"], (now, entry, r[0], token))
            buried.append((r[0], _kind_of(r[1]), error))
    if len(jobs) < len(claimed):
        c.execute(q["counter_add"], ("undecodable", len(claimed) - len(jobs)))
    return jobs


class SQLiteJobs(SQLiteLongJobs):
    """The jobs family on the SQLite engine (its long-job operations in _long.py)."""

    def job_insert_many(self, jobs: Sequence[NewJob], conn: Any = None) -> list[Inserted]:
        if conn is not None:
            return self.bind(conn).job_insert_many(jobs)
        if needs_policy(jobs):  # unique, expiring or shed at enqueue: see _policy.py
            inserted = self._tx(
                lambda c: correlate(c, jobs, policy.insert_with_policy(c, jobs, self.now, insert))
            )
            return self._rung(inserted, True)
        prepared = rows_of(jobs, self.now())
        inserted = self._tx(lambda c: correlate(c, jobs, insert_rows(c, prepared)))
        return self._rung(inserted, bool(prepared.arrivals))

    def _claimer(self) -> Claimer:
        return Claimer(self._doorbell, self._clock_writes)

    def job_claim(self, params: ClaimParams) -> list[ClaimedJob]:
        if params.limit <= 0 or not params.queues:
            return []
        probe = self._q["job_claim_any"]  # outside the write lock: an empty queue takes none
        if not any(self._read(probe, (q,)) for q in params.queues):
            return []
        buried: list[tuple[int, str, str]] = []
        claimer = self._claimer()

        def body(c: sqlite3.Connection) -> list[ClaimedJob]:
            buried.clear()  # a busy database runs the body again
            return claim_jobs(c, params, self.now(), buried, claimer)

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
            claimed = [] if claim is None else self.job_claim(claim)
            return AckClaim(NO_ACK, NO_ACK, claimed)

        buried: list[tuple[int, str, str]] = []
        claimer = self._claimer()

        def body(c: sqlite3.Connection) -> AckClaim:
            buried.clear()  # a busy database runs the body again
            now = self.now()
            a = complete(c, done, now)
            b = fail(c, failed, now)
            lost = start(c, started)
            claimed = [] if claim is None else claim_jobs(c, claim, now, buried, claimer)
            return AckClaim(a, b, claimed, lost)

        acked = self._tx(body)
        report_buried(acked.claimed, buried)
        return acked

    def job_complete_many(self, done: Sequence[Completion]) -> AckResult:
        if not done:
            return NO_ACK
        return self._tx(lambda c: complete(c, done, self.now()))

    def job_fail_many(self, failed: Sequence[Failure]) -> AckResult:
        if not failed:
            return NO_ACK
        return self._tx(lambda c: fail(c, failed, self.now()))

    def job_start_many(self, leases: Sequence[Lease]) -> list[int]:
        if not leases:
            return []
        return self._tx(lambda c: start(c, leases))

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
        r[19],  # version
    )


def _kind_of(stored: object) -> str:
    """A job type name for a log line, whatever the column holds."""
    if isinstance(stored, bytes):
        return stored.decode("utf-8", "replace")
    return str(stored)
