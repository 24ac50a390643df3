"""The store operations of load shedding, blackhole rules and unique jobs (part of the contract).

`Store` inherits these; each engine implements them in its `_policy.py` mixin with the SQL of
its `policy.sql`. A job's policy rides on `NewJob.policy`: engines insert such jobs in one
transaction that checks uniqueness, inserts, then stamps expiry and the uniqueness key (and
stores jobs shed at enqueue directly as `shed`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from offload.dispatch._rules import Rule

if TYPE_CHECKING:
    from offload.store._contract import AckResult

SHED_COUNTER = "shed"
REFUSED_COUNTER = "refused"
EXPIRED_REASON = "shed: expired before it could run"


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """The shedding and uniqueness options of one job being inserted.

    expires_in / expires_at: the job is shed instead of run once past this (seconds after the
        insert by the store's clock, or an epoch time); one of them at most.
    unique_key, unique_period, unique_states: an insert finds the newest job with this key,
        inserted within `unique_period` seconds (any time when None) and in one of
        `unique_states`, and returns it as a duplicate instead of inserting.
    shed_rule, shed_reason: the job matched a blackhole rule at enqueue; it is stored `shed`.
    critical, max_backlog: read by the producer's backlog check; the store ignores them.
    """

    expires_in: float | None = None
    expires_at: float | None = None
    unique_key: str | None = None
    unique_period: float | None = None
    unique_states: tuple[str, ...] = ()
    shed_rule: int | None = None
    shed_reason: str | None = None
    critical: bool = False
    max_backlog: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobPolicy:
        """From `dataclasses.asdict` output that went through JSON (the outbox)."""
        fields = dict(data)
        fields["unique_states"] = tuple(fields.get("unique_states") or ())
        return cls(**fields)

    @property
    def stamps(self) -> bool:
        """Whether the inserted row needs more than the plain insert writes."""
        return (
            self.expires_in is not None
            or self.expires_at is not None
            or self.unique_key is not None
            or self.shed_reason is not None
        )


def needs_policy(jobs: Sequence[Any]) -> bool:
    """Whether an insert of these `NewJob`s takes the policy path (uniqueness, expiry, shed at
    enqueue); a batch without any runs the engine's plain insert unchanged."""
    return any(j.policy is not None and j.policy.stamps for j in jobs)


@dataclass(frozen=True, slots=True)
class NewRule:
    """A blackhole rule to add: jobs of `kind` (any when None) meeting `where` are shed."""

    kind: str | None
    where: str
    reason: str = ""
    expires_in: float | None = None


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A job waiting to run, as a blackhole rule's condition sees it (a rule's preview).
    Arguments or meta that cannot be decoded read as empty objects."""

    id: int
    kind: str
    queue: str
    tenant: str | None
    args: dict[str, Any]
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Shed:
    """A claimed job to shed instead of run, fenced by its lease token like an ack."""

    id: int
    token: int
    reason: str
    rule: int | None = None


@dataclass(frozen=True, slots=True)
class BacklogBound:
    """A bound a producer enforces: `scope` 'queue' or 'kind', the name, and the bound."""

    scope: str
    name: str
    bound: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """The approximate number of available jobs of a bounded queue or kind, counted at most
    up to its bound + 1, and when it was counted (the store's clock)."""

    scope: str
    name: str
    bound: int
    depth: int
    counted_at: float


class PolicyOps(abc.ABC):
    """The part of the store contract for shedding, rules and unique jobs."""

    @abc.abstractmethod
    def rule_add(self, rule: NewRule) -> Rule:
        """Store a blackhole rule; return it with its id and times."""

    @abc.abstractmethod
    def rule_list(self, include_expired: bool = False) -> list[Rule]:
        """Rules in id order; only live ones (not expired by the store's clock) by default."""

    @abc.abstractmethod
    def rule_remove(self, rule_id: int) -> bool:
        """Delete a rule; False when there is none with that id."""

    @abc.abstractmethod
    def job_queued_page(self, kind: str | None, after_id: int, limit: int) -> list[QueuedJob]:
        """Up to `limit` jobs waiting to run (scheduled, available, retryable) of `kind` (any
        when None), in id order after `after_id`: what a new blackhole rule would shed. The
        caller matches the rule's condition (its language runs in Python, dispatch/_rules.py)
        and pages on with the last id."""

    @abc.abstractmethod
    def rule_prune(self, expired_before: float) -> int:
        """Delete rules that expired before this time (nothing applies them any more)."""

    @abc.abstractmethod
    def job_shed_many(self, sheds: Sequence[Shed]) -> AckResult:
        """Shed running jobs whose lease token still matches: state `shed`, the attempt not
        counted, an error entry of kind 'shed' (with the rule id, if any), counter `shed`."""

    @abc.abstractmethod
    def job_shed_expired(self, limit: int) -> int:
        """Shed up to `limit` scheduled, available or retryable jobs past their expiry."""

    @abc.abstractmethod
    def backlog_refresh(self, bounds: Sequence[BacklogBound] | None = None) -> list[Backlog]:
        """Count the backlog of these bounds (registering them), or of every registered one
        when None; each count stops at bound + 1, so it never scans a whole backlog."""

    @abc.abstractmethod
    def backlog_read(self) -> list[Backlog]:
        """The registered bounds and their last counts, without counting."""
