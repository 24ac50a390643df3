"""The PostgreSQL engine's policy family: load shedding, blackhole rules and unique jobs. The
jobs family inserts jobs carrying a policy through `policy_insert_steps`; the rest is
`PostgresPolicy`, mixed into PostgresStore.

Unique jobs are race-free because the insert transaction first takes a transaction-scoped
advisory lock on each uniqueness key of the batch (in key order), then looks for a duplicate,
then inserts: a concurrent enqueue of the same key waits for the lock and then sees the row.
The insert runs as statements yielded to a driver loop (`_insert.py`), so the sync pool,
a caller's connection and a caller's async connection all run this same logic.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from offload.dispatch._rules import Rule
from offload.store._codec import read
from offload.store._contract import AckResult, Inserted
from offload.store._policy import (
    EXPIRED_REASON,
    Backlog,
    BacklogBound,
    NewRule,
    PolicyOps,
    QueuedJob,
    Shed,
)
from offload.store.postgres._core import PostgresCore
from offload.store.postgres._values import plain_text

if TYPE_CHECKING:
    from offload.store._contract import NewJob

Steps = Generator[tuple[str, dict[str, Any]], list[Any], list[Inserted]]
_DUPLICATE_IN_BATCH = -1


def policy_insert_steps(
    ex: PostgresCore, jobs: Sequence[NewJob], plain: Callable[[Sequence[NewJob]], Steps]
) -> Steps:
    """The insert of jobs some of which carry a policy, as statements (see the module's
    docstring), inserting the fresh ones with `plain` (the jobs family's insert); runs inside
    the insert's transaction."""
    q = ex._q
    out: list[Inserted | None] = [None] * len(jobs)
    unique = [
        (i, j.policy)
        for i, j in enumerate(jobs)
        if j.policy is not None and j.policy.unique_key is not None
    ]
    first_of: dict[str, int] = {}
    if unique:
        keys = [str(policy.unique_key) for _, policy in unique]
        yield q["unique_lock"], {"ns": ex.schema, "keys": keys}
        params = {
            "keys": keys,
            "periods": [_float(policy.unique_period) for _, policy in unique],
            "states": [",".join(policy.unique_states) for _, policy in unique],
        }
        found = {int(n) - 1: holder for n, holder in (yield q["unique_find"], params)}
        for n, (i, policy) in enumerate(unique):
            key = str(policy.unique_key)
            if found.get(n) is not None:
                out[i] = Inserted(int(found[n]), duplicate=True)
            elif key in first_of:
                out[i] = Inserted(_DUPLICATE_IN_BATCH, duplicate=True)
            else:
                first_of[key] = i
    fresh = [i for i, o in enumerate(out) if o is None]
    inserted: list[Inserted] = []
    if fresh:
        inserted = yield from plain([replace(jobs[i], policy=None) for i in fresh])
    stamp: dict[str, list[Any]] = {
        "ids": [],
        "expires_in": [],
        "expires_at": [],
        "dedup": [],
        "rules": [],
        "reasons": [],
    }
    for i, result in zip(fresh, inserted, strict=True):
        out[i] = result
        stamps = jobs[i].policy
        if result.duplicate or stamps is None or not stamps.stamps:
            continue
        stamp["ids"].append(result.id)
        stamp["expires_in"].append(_float(stamps.expires_in))
        stamp["expires_at"].append(_float(stamps.expires_at))
        stamp["dedup"].append(stamps.unique_key)
        stamp["rules"].append(stamps.shed_rule)
        stamp["reasons"].append(
            None if stamps.shed_reason is None else plain_text(stamps.shed_reason)
        )
    if stamp["ids"]:
        yield q["job_policy_apply"], {**stamp, "expired": EXPIRED_REASON}
    final: list[Inserted] = []
    for i, item in enumerate(out):
        assert item is not None
        if item.id == _DUPLICATE_IN_BATCH:
            mine = jobs[i].policy
            assert mine is not None and mine.unique_key is not None
            holder = out[first_of[mine.unique_key]]
            assert holder is not None
            item = Inserted(holder.id, duplicate=True)
        final.append(item)
    return final


class PostgresPolicy(PostgresCore, PolicyOps):
    """Policy operations: shedding, blackhole rules and backlog bounds."""

    # --- shedding ---------------------------------------------------------------------
    def job_shed_many(self, sheds: Sequence[Shed]) -> AckResult:
        if not sheds:
            return AckResult(0, 0)
        params = {
            "ids": [s.id for s in sheds],
            "tokens": [s.token for s in sheds],
            "reasons": [plain_text(s.reason) for s in sheds],
            "rules": [s.rule for s in sheds],
            "n": len(sheds),
        }
        applied = int(self._rows("job_shed", params)[0][0])
        return AckResult(applied, len(sheds) - applied)

    def job_shed_expired(self, limit: int) -> int:
        params = {"limit": int(limit), "reason": EXPIRED_REASON}
        return int(self._rows("job_shed_expired", params)[0][0])

    # --- rules --------------------------------------------------------------------------
    def rule_add(self, rule: NewRule) -> Rule:
        params = {
            "kind": rule.kind,
            "condition": plain_text(rule.where),
            "reason": plain_text(rule.reason),
            "expires_in": _float(rule.expires_in),
        }
        return _rule(self._rows("rule_add", params, idempotent=False)[0])

    def rule_list(self, include_expired: bool = False) -> list[Rule]:
        return [_rule(r) for r in self._rows("rule_list", {"all": include_expired})]

    def rule_remove(self, rule_id: int) -> bool:
        return bool(self._count("rule_remove", {"id": int(rule_id)}))

    def job_queued_page(self, kind: str | None, after_id: int, limit: int) -> list[QueuedJob]:
        params = {"kind": kind, "after": int(after_id), "limit": int(limit)}
        return [_queued(r) for r in self._rows("job_queued_page", params)]

    def rule_prune(self, expired_before: float) -> int:
        return self._count("rule_prune", {"before": float(expired_before)})

    # --- backlog ------------------------------------------------------------------------
    def backlog_refresh(self, bounds: Sequence[BacklogBound] | None = None) -> list[Backlog]:
        given = list(bounds or [])
        columns = {
            "scopes": [b.scope for b in given],
            "names": [b.name for b in given],
        }
        if given:
            register = {**columns, "bounds": [int(b.bound) for b in given]}
            self._exec("backlog_register", register)
        rows = self._rows("backlog_count", {**columns, "all": bounds is None})
        return sorted((_backlog(r) for r in rows), key=lambda b: (b.scope, b.name))

    def backlog_read(self) -> list[Backlog]:
        return [_backlog(r) for r in self._rows("backlog_read", {})]


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _queued(r: Sequence[Any]) -> QueuedJob:
    """A row of job_queued_page; fields that cannot be decoded read as empty."""
    values, _ = read(
        {"kind": r[1], "queue": r[2], "tenant": r[3], "args": r[4], "meta": r[5]},
        decoded=True,
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


def _backlog(r: Sequence[Any]) -> Backlog:
    return Backlog(r[0], r[1], int(r[2]), int(r[3]), float(r[4]))
