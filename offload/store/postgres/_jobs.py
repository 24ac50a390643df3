"""The PostgreSQL engine's jobs family: insert, claim, acknowledge, heartbeat, start, release.

A claim whose best candidates name no limit key is one statement (`job_claim`); otherwise the
dispatch family claims through limits (`_dispatch.claim_limited`). A worker's cycle
(`job_ack_claim`: its completions, failures and starts, then its next claim) runs as one
pipelined transaction on the pool: BEGIN, the statements and COMMIT cost two round trips and
the cycle one commit; a cycle of one statement commits by itself. On a bound executor the same
statements run pipelined in its transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import pq

from offload._errors import StoreError
from offload.store._codec import CLAIM_ROUNDS, bounded_error, bounded_traceback, report_buried
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
from offload.store.postgres import _dispatch as dispatch
from offload.store.postgres import _insert
from offload.store.postgres import _totals as totals
from offload.store.postgres import _workflows as workflows
from offload.store.postgres._connect import async_caller_connection
from offload.store.postgres._core import Conn, PostgresCore
from offload.store.postgres._errors import refused
from offload.store.postgres._long import PostgresLongJobs
from offload.store.postgres._values import lenient_json_text, plain_text

log = logging.getLogger("offload.store")


class PostgresJobs(PostgresLongJobs):
    """The jobs family: what producers and workers do to jobs (long-job operations in
    _long.py)."""

    def job_insert_many(self, jobs: Sequence[NewJob], conn: Any = None) -> list[Inserted]:
        if not jobs:
            return []
        if conn is not None:
            return self.bind(conn).job_insert_many(jobs)
        return self._run(
            "job_insert_many",
            lambda c: _insert.insert(self, c, jobs),
            idempotent=False,
            transaction=_insert.needs_transaction(jobs),
            retries=2,  # a unique key's holder vanished under the insert: insert again
        )

    async def job_insert_many_async(self, jobs: Sequence[NewJob], conn: Any) -> list[Inserted]:
        if not jobs:
            return []
        own = await async_caller_connection(conn)
        try:
            # In autocommit with no transaction open, an insert of one statement commits by
            # itself, as on the pool (one round trip); one of several statements gets a
            # transaction of its own (BEGIN and COMMIT: two more round trips), and within a
            # transaction block the caller opened, a savepoint as before.
            alone = own.info.transaction_status == pq.TransactionStatus.IDLE
            if own.autocommit and (not alone or _insert.needs_transaction(jobs)):
                async with own.transaction():
                    return await _insert_async(self, own, jobs)
            return await _insert_async(self, own, jobs)
        except psycopg.OperationalError as exc:
            if (full := refused(exc, self._where, "the enqueue")) is not None:
                raise full from exc
            if not own.broken:
                raise
            raise StoreError(f"the caller's connection was lost while enqueuing: {exc}") from exc

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
        plain = bool(queues) and dispatch.plain_claim(self, queues)
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
            if claim.skip_kinds:  # some kind is paused: the claim's variant (pauses.sql)
                args["skip_kinds"] = sorted(claim.skip_kinds)
        claim_sql = "job_claim_unpaused" if "skip_kinds" in args else "job_claim"
        acks = bool(done or failed)
        complete = _complete_params(done, self.channel)
        fail = _fail_params(failed, self.channel)
        start = _lease_params(started)

        q = self._q
        # Workflows' steps among the ended jobs: their workflows advance in this transaction
        # (offload/store/_workflows.py); a worker says which jobs are steps, so that plain
        # jobs cost nothing more.
        steps = [d.id for d in done if d.step is not False]
        steps += [f.id for f in failed if f.retry_in is None and f.step is not False]

        def one(c: Conn) -> tuple[int, int, list[Any], set[int]]:
            """A lone statement: it commits by itself (autocommit), one round trip."""
            if done:
                return int(self._one(c, "job_complete", complete)[0]), 0, [], set()
            if failed:
                return 0, int(self._one(c, "job_fail", fail)[0]), [], set()
            if started:
                return 0, 0, [], {r[0] for r in c.execute(q["job_start"], start)}
            return 0, 0, c.execute(q[claim_sql], args).fetchall(), set()

        def cycle(c: Conn) -> tuple[int, int, list[Any], set[int]]:
            """Several statements in one transaction, pipelined (`_run`): BEGIN, the statements
            and COMMIT cost two round trips, and the cycle one commit."""
            self._hint(c, "generic_plan")
            if not durable:  # at-least-once jobs only: a lost cycle runs them again
                self._hint(c, "async_commit")
            ca = c.execute(q["job_complete"], complete) if done else None
            cb = c.execute(q["job_fail"], fail) if failed else None
            cs = c.execute(q["job_start"], start) if started else None
            cc = c.execute(q[claim_sql], args) if args else None
            a = 0 if ca is None else int(ca.fetchone()[0])  # type: ignore[index]
            b = 0 if cb is None else int(cb.fetchone()[0])  # type: ignore[index]
            kept = set() if cs is None else {r[0] for r in cs.fetchall()}
            rows = [] if cc is None else cc.fetchall()
            if steps:
                workflows.advance_jobs(self, c, steps)
            return a, b, rows, kept

        a = b = 0
        rows: list[Any] = []
        kept: set[int] = set()
        if acks or args or started:
            what = "job_ack_claim" if acks or started else "job_claim"
            several = int(bool(done)) + int(bool(failed)) + int(bool(started)) + int(bool(args))
            if several > 1 or not durable or steps:
                a, b, rows, kept = self._run(
                    what, cycle, idempotent=False, transaction=True, pipeline=True
                )
            else:
                a, b, rows, kept = self._run(what, one, idempotent=False)
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
                dispatch.after_plain_claim(self, queues, rows, limited, len(rows) < params.limit)
                if limited and len(rows) < params.limit:
                    # Whatever the plain claim took counts against the slots to start.
                    rest = replace(
                        params,
                        limit=params.limit - len(rows),
                        start=None if params.start is None else max(params.start - len(rows), 0),
                    )
                    rows += dispatch.claim_limited(self, rest, token)
            elif not self._scalar("job_claim_probe", {"queues": queues}):
                return [], 0
        if not rows:  # limit keys (or other claims) in the way: claim through limits
            rows = dispatch.claim_limited(self, params, token)
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
                    r[21],  # version
                )
                for r in rows
            ],
            buried,
        )
        return jobs, len(buried)

    def _count_buried(self, n: int) -> None:
        """Count jobs a claim made dead for their undecodable data (the claim has committed:
        a failure here must not lose the jobs it took; in a transaction it is the
        transaction's)."""
        if self.in_transaction:
            totals.counter_add(self, "undecodable", n)
            return
        try:
            totals.counter_add(self, "undecodable", n)
        except (StoreError, psycopg.Error) as exc:
            log.warning("could not count %d undecodable jobs (%s)", n, exc)

    def job_complete_many(self, done: Sequence[Completion]) -> AckResult:
        if not done:
            return AckResult(0, 0)
        if any(d.step is not False for d in done):  # may be workflows' steps
            return self.job_ack_claim(done, (), None).completed
        applied = int(self._scalar("job_complete", _complete_params(done, self.channel)))
        return AckResult(applied, len(done) - applied)

    def job_fail_many(self, failed: Sequence[Failure]) -> AckResult:
        if not failed:
            return AckResult(0, 0)
        if any(f.retry_in is None and f.step is not False for f in failed):
            return self.job_ack_claim((), failed, None).failed
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


async def _insert_async(
    ex: PostgresCore, c: psycopg.AsyncConnection[Any], jobs: Sequence[NewJob]
) -> list[Inserted]:
    """`_insert` through the async driver: the same statements, awaited."""
    steps = _insert.insert_steps(ex, jobs)
    try:
        query, params = next(steps)
        while True:
            cursor = await c.execute(query, params)
            query, params = steps.send(await cursor.fetchall())
    except StopIteration as done:
        result: list[Inserted] = done.value
        return result


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
        "errors": [plain_text(bounded_error(f.error)) for f in failed],
        "tracebacks": [plain_text(bounded_traceback(f.traceback)) for f in failed],
        "retry_in": [None if f.retry_in is None else float(f.retry_in) for f in failed],
        "throttled": [f.throttled for f in failed],
        "n": len(failed),
    }
