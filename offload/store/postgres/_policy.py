"""The PostgreSQL engine's load shedding, blackhole rules and unique jobs (mixed into
PostgresStore).

Unique jobs are race-free because the insert transaction first takes a transaction-scoped
advisory lock on each uniqueness key of the batch (in key order), then looks for a duplicate,
then inserts: a concurrent enqueue of the same key waits for the lock and then sees the row.
The insert runs as statements yielded to a driver loop (`_insert_steps`), so the sync pool,
a caller's connection and a caller's async connection all run this same logic.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from offload.dispatch._rules import Rule
from offload.store._codec import read
from offload.store._policy import (
    EXPIRED_REASON,
    Backlog,
    BacklogBound,
    NewRule,
    PolicyOps,
    QueuedJob,
    Shed,
)
from offload.store._sql import queries
from offload.store.postgres._values import plain_text

if TYPE_CHECKING:
    import psycopg

    from offload.store._contract import AckResult, Inserted, NewJob

T = TypeVar("T")
Steps = Generator[tuple[str, dict[str, Any]], list[Any], "list[Inserted]"]
_DUPLICATE_IN_BATCH = -1


class PostgresPolicy(PolicyOps):
    """Policy operations on top of the PostgreSQL engine's pool and statement runner."""

    if TYPE_CHECKING:
        schema: str

        def _expand(self, text: str) -> str: ...
        def _run(
            self,
            what: str,
            body: Callable[[psycopg.Connection[Any]], T],
            *,
            idempotent: bool = True,
            transaction: bool = False,
        ) -> T: ...
        def _scalar(self, name: str, params: dict[str, Any] | None = None, **how: bool) -> Any: ...
        def _insert_steps(self, jobs: Sequence[NewJob]) -> Steps: ...

    @property
    def _p(self) -> dict[str, str]:
        cached: dict[str, str] | None = getattr(self, "_policy_queries", None)
        if cached is None:
            cached = {k: self._expand(v) for k, v in queries("postgres", "policy").items()}
            self._policy_queries = cached
        return cached

    def _policy_rows(self, name: str, params: dict[str, Any], idempotent: bool = True) -> list[Any]:
        query = self._p[name]
        return self._run(name, lambda c: c.execute(query, params).fetchall(), idempotent=idempotent)

    # --- inserting with a policy --------------------------------------------------------
    def _policy_insert_steps(self, jobs: Sequence[NewJob]) -> Steps:
        """The insert of jobs some of which carry a policy, as statements (see the module's
        docstring); runs inside the insert's transaction."""
        from offload.store._contract import Inserted

        p = self._p
        out: list[Inserted | None] = [None] * len(jobs)
        unique = [
            (i, j.policy)
            for i, j in enumerate(jobs)
            if j.policy is not None and j.policy.unique_key is not None
        ]
        first_of: dict[str, int] = {}
        if unique:
            keys = [str(policy.unique_key) for _, policy in unique]
            yield p["unique_lock"], {"ns": self.schema, "keys": keys}
            params = {
                "keys": keys,
                "periods": [_float(policy.unique_period) for _, policy in unique],
                "states": [",".join(policy.unique_states) for _, policy in unique],
            }
            found = {int(n) - 1: holder for n, holder in (yield p["unique_find"], params)}
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
            inserted = yield from self._insert_steps([replace(jobs[i], policy=None) for i in fresh])
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
            yield p["job_policy_apply"], {**stamp, "expired": EXPIRED_REASON}
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

    # --- shedding ---------------------------------------------------------------------
    def job_shed_many(self, sheds: Sequence[Shed]) -> AckResult:
        from offload.store._contract import AckResult

        if not sheds:
            return AckResult(0, 0)
        params = {
            "ids": [s.id for s in sheds],
            "tokens": [s.token for s in sheds],
            "reasons": [plain_text(s.reason) for s in sheds],
            "rules": [s.rule for s in sheds],
            "n": len(sheds),
        }
        applied = int(self._policy_rows("job_shed", params)[0][0])
        return AckResult(applied, len(sheds) - applied)

    def job_shed_expired(self, limit: int) -> int:
        params = {"limit": int(limit), "reason": EXPIRED_REASON}
        return int(self._policy_rows("job_shed_expired", params)[0][0])

    # --- rules --------------------------------------------------------------------------
    def rule_add(self, rule: NewRule) -> Rule:
        params = {
            "kind": rule.kind,
            "condition": plain_text(rule.where),
            "reason": plain_text(rule.reason),
            "expires_in": _float(rule.expires_in),
        }
        return _rule(self._policy_rows("rule_add", params, idempotent=False)[0])

    def rule_list(self, include_expired: bool = False) -> list[Rule]:
        return [_rule(r) for r in self._policy_rows("rule_list", {"all": include_expired})]

    def rule_remove(self, rule_id: int) -> bool:
        query = self._p["rule_remove"]
        params = {"id": int(rule_id)}
        return bool(self._run("rule_remove", lambda c: c.execute(query, params).rowcount))

    def job_queued_page(self, kind: str | None, after_id: int, limit: int) -> list[QueuedJob]:
        params = {"kind": kind, "after": int(after_id), "limit": int(limit)}
        return [_queued(r) for r in self._policy_rows("job_queued_page", params)]

    def rule_prune(self, expired_before: float) -> int:
        query = self._p["rule_prune"]
        params = {"before": float(expired_before)}
        return int(self._run("rule_prune", lambda c: c.execute(query, params).rowcount))

    # --- backlog ------------------------------------------------------------------------
    def backlog_refresh(self, bounds: Sequence[BacklogBound] | None = None) -> list[Backlog]:
        given = list(bounds or [])
        columns = {
            "scopes": [b.scope for b in given],
            "names": [b.name for b in given],
        }
        if given:
            register = {**columns, "bounds": [int(b.bound) for b in given]}
            query = self._p["backlog_register"]
            self._run("backlog_register", lambda c: c.execute(query, register))
        rows = self._policy_rows("backlog_count", {**columns, "all": bounds is None})
        return sorted((_backlog(r) for r in rows), key=lambda b: (b.scope, b.name))

    def backlog_read(self) -> list[Backlog]:
        return [_backlog(r) for r in self._policy_rows("backlog_read", {})]


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
