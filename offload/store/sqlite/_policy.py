"""The SQLite engine's policy family: load shedding, blackhole rules and unique jobs.

Unique jobs are race-free because every write runs under `BEGIN IMMEDIATE`: the look-up of a
duplicate and the insert happen while this connection holds the file's writer lock. An insert
with a policy runs in the insert's transaction through `insert_with_policy`, which the jobs
family calls with its plain insert.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from offload.dispatch._rules import Rule
from offload.dispatch._shedding import KIND, QUEUE
from offload.store._codec import dumps, read
from offload.store._contract import AckResult, Inserted, NewJob
from offload.store._policy import (
    EXPIRED_REASON,
    SHED_COUNTER,
    Backlog,
    BacklogBound,
    NewRule,
    QueuedJob,
    Shed,
)
from offload.store._sql import queries
from offload.store.sqlite._base import SQLiteBase

Insert = Callable[[sqlite3.Connection, Sequence[NewJob], float], list[Inserted]]


def _p() -> dict[str, str]:
    return queries("sqlite", "policy")


def insert_with_policy(
    c: sqlite3.Connection, jobs: Sequence[NewJob], now: Callable[[], float], insert: Insert
) -> list[Inserted]:
    """Insert jobs some of which carry a policy, in the transaction of `c`: duplicates found
    by their uniqueness key are returned instead of inserted; the others are inserted by
    `insert` (the plain insert), then stamped (expiry, key) and, when shed at enqueue, stored
    shed. `now` is the store's clock."""
    p = _p()
    started = now()
    out: list[Inserted | None] = [None] * len(jobs)
    first_of: dict[str, int] = {}
    fresh: list[int] = []
    for i, job in enumerate(jobs):
        policy = job.policy
        if policy is not None and policy.unique_key is not None:
            earlier = first_of.get(policy.unique_key)
            if earlier is not None:
                out[i] = Inserted(-1 - earlier, duplicate=True)  # resolved below
                continue
            since = None if policy.unique_period is None else started - policy.unique_period
            row = c.execute(
                p["unique_find"],
                {
                    "key": policy.unique_key,
                    "states": dumps(list(policy.unique_states)),
                    "since": since,
                },
            ).fetchone()
            if row is not None:
                out[i] = Inserted(int(row[0]), duplicate=True)
                continue
            first_of[policy.unique_key] = i
        fresh.append(i)
    plain = [replace(jobs[i], policy=None) for i in fresh]
    inserted = insert(c, plain, now()) if plain else []
    shed = 0
    stamped = now()  # after the insert: an expiry of 0 seconds has passed
    for i, result in zip(fresh, inserted, strict=True):
        out[i] = result
        policy = jobs[i].policy
        if result.duplicate or policy is None or not policy.stamps:
            continue
        row = c.execute(
            p["job_policy_apply"],
            {
                "id": result.id,
                "expires_at": policy.expires_at,
                "expires_in": policy.expires_in,
                "dedup_key": policy.unique_key,
                "reason": policy.shed_reason,
                "rule": policy.shed_rule,
                "expired": EXPIRED_REASON,
                "now": stamped,
            },
        ).fetchone()
        shed += row is not None and row[0] == "shed"
    if shed:
        c.execute(queries("sqlite")["counter_add"], (SHED_COUNTER, shed))
    final: list[Inserted] = []
    for item in out:
        assert item is not None
        if item.id < 0:  # a duplicate of an earlier job of this batch
            holder = out[-1 - item.id]
            assert holder is not None
            item = Inserted(holder.id, duplicate=True)
        final.append(item)
    return final


class SQLitePolicy(SQLiteBase):
    """The policy family on the SQLite engine: shedding, rules and backlog bounds."""

    @property
    def _p(self) -> dict[str, str]:
        return _p()

    # --- shedding ---------------------------------------------------------------------
    def job_shed_many(self, sheds: Sequence[Shed]) -> AckResult:
        if not sheds:
            return AckResult(0, 0)
        sql = self._p["job_shed"]

        def body(c: sqlite3.Connection) -> AckResult:
            now = self.now()
            applied = 0
            for s in sheds:
                params = {"now": now, "reason": s.reason, "rule": s.rule, "id": s.id}
                applied += c.execute(sql, {**params, "token": s.token}).rowcount
            stale = len(sheds) - applied
            if applied:
                c.execute(self._q["counter_add"], (SHED_COUNTER, applied))
            if stale:
                c.execute(self._q["counter_add"], ("stale_acks", stale))
            return AckResult(applied, stale)

        return self._tx(body)

    def job_shed_expired(self, limit: int) -> int:
        sql = self._p["job_shed_expired"]

        def body(c: sqlite3.Connection) -> int:
            params = {"now": self.now(), "reason": EXPIRED_REASON, "limit": int(limit)}
            n = c.execute(sql, params).rowcount
            if n:
                c.execute(self._q["counter_add"], (SHED_COUNTER, n))
            return n

        return self._tx(body)

    # --- rules --------------------------------------------------------------------------
    def rule_add(self, rule: NewRule) -> Rule:
        params = {
            "kind": rule.kind,
            "condition": rule.where,
            "reason": rule.reason,
            "expires_in": rule.expires_in,
        }
        sql = self._p["rule_add"]
        row = self._tx(lambda c: c.execute(sql, {**params, "now": self.now()}).fetchone())
        return _rule(row)

    def rule_list(self, include_expired: bool = False) -> list[Rule]:
        rows = self._read(self._p["rule_list"], {"all": include_expired, "now": self.now()})
        return [_rule(r) for r in rows]

    def rule_remove(self, rule_id: int) -> bool:
        sql = self._p["rule_remove"]
        return bool(self._tx(lambda c: c.execute(sql, (int(rule_id),)).rowcount))

    def job_queued_page(self, kind: str | None, after_id: int, limit: int) -> list[QueuedJob]:
        params = {"kind": kind, "after": int(after_id), "limit": int(limit)}
        return [_queued(r) for r in self._read(self._p["job_queued_page"], params)]

    def rule_prune(self, expired_before: float) -> int:
        sql = self._p["rule_prune"]
        return int(self._tx(lambda c: c.execute(sql, (float(expired_before),)).rowcount))

    # --- backlog ------------------------------------------------------------------------
    def backlog_refresh(self, bounds: Sequence[BacklogBound] | None = None) -> list[Backlog]:
        p = self._p
        if bounds:
            register = p["backlog_register"]

            def add(c: sqlite3.Connection) -> None:
                for b in bounds:
                    c.execute(register, (b.scope, b.name, int(b.bound)))

            self._tx(add)
        wanted = None if bounds is None else {(b.scope, b.name) for b in bounds}
        rows = [r for r in self.backlog_read() if wanted is None or (r.scope, r.name) in wanted]
        # Count outside the write transaction (WAL readers never block the writer), then
        # record the counts in a short one.
        counted = []
        for r in rows:
            sql = p["backlog_count_queue"] if r.scope == QUEUE else p["backlog_count_kind"]
            if r.scope not in (QUEUE, KIND):
                continue
            depth = int(self._read(sql, (r.name, r.bound + 1))[0][0])
            counted.append(Backlog(r.scope, r.name, r.bound, depth, self.now()))
        if counted:
            update = p["backlog_set"]

            def save(c: sqlite3.Connection) -> None:
                for b in counted:
                    c.execute(update, (b.depth, b.counted_at, b.scope, b.name))

            self._tx(save)
        return counted

    def backlog_read(self) -> list[Backlog]:
        rows = self._read(self._p["backlog_read"])
        return [Backlog(r[0], r[1], int(r[2]), int(r[3]), float(r[4])) for r in rows]


def _queued(r: Sequence[Any]) -> QueuedJob:
    """A row of job_queued_page; fields that cannot be decoded read as empty."""
    values, _ = read(
        {"kind": r[1], "queue": r[2], "tenant": r[3], "args": r[4], "meta": r[5]},
        decoded=False,
    )
    return QueuedJob(
        int(r[0]), values["kind"], values["queue"], values["tenant"], values["args"], values["meta"]
    )


def _rule(r: Sequence[Any]) -> Rule:
    return Rule(
        id=int(r[0]),
        kind=r[1],
        where=r[2],
        reason=r[3],
        created_at=float(r[4]),
        expires_at=None if r[5] is None else float(r[5]),
    )
