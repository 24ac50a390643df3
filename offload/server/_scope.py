"""What one caller may reach: the one place routes ask whether a job, a queue or a kind is
theirs, and how much of a job they may read.

A token's scope (`Token.queues`, `kinds`, `tenants`, `data`) travels with its `Principal`.
Routes that show or change particular jobs ask `scope.allows_job(record)` (another tenant's job
is a 404, as if it did not exist), narrow store queries with `scope.job_filter(...)` and show
jobs through `scope.shown(...)`. Every other route is closed to a limited token: the wrappers
of API routes and dashboard pages (`api`, `page`) answer 403 unless the route says it applies
the scope itself (`scoped=True`), so a route added later is closed until it does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from offload.server._problems import Problem
from offload.store._contract import JobFilter, JobRecord

REDACTED = "***"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a token may act; None: anywhere."""

    tenants: frozenset[str] | None = None
    queues: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    data: bool = True

    @classmethod
    def of(
        cls,
        tenants: Iterable[str] | None = None,
        queues: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        data: bool = True,
    ) -> Scope:
        def names(values: Iterable[str] | None) -> frozenset[str] | None:
            return None if values is None else frozenset(values)

        return cls(names(tenants), names(queues), names(kinds), data)

    @property
    def limited(self) -> bool:
        """True when the token may not see every job in full: routes that span every tenant,
        or that show arguments without `shown`, are closed to it."""
        return self.tenants is not None or not self.data

    # --- jobs ----------------------------------------------------------------------------
    def allows_tenant(self, tenant: str | None) -> bool:
        return self.tenants is None or (tenant is not None and tenant in self.tenants)

    def allows_job(self, record: JobRecord) -> bool:
        """Whether the caller may know of this job at all."""
        return self.allows_tenant(record.tenant)

    def job_filter(self, flt: JobFilter) -> JobFilter:
        """A listing's filter narrowed to the caller's tenants."""
        if self.tenants is None:
            return flt
        return dataclasses.replace(flt, tenants=sorted(self.tenants))

    def shown(self, record: JobRecord) -> JobRecord:
        """The job as the caller may read it: without arguments, result, cursor and
        tracebacks when the token may not read data (each value `***`, names kept)."""
        if self.data:
            return record
        return dataclasses.replace(
            record,
            args={name: REDACTED for name in record.args} if isinstance(record.args, dict) else {},
            result=None if record.result is None else REDACTED,
            cursor=None if record.cursor is None else REDACTED,
            errors=[{**e, "traceback": REDACTED} if "traceback" in e else e for e in record.errors],
        )

    def shown_value(self, value: Any) -> Any:
        """A result (or any job data) as the caller may read it."""
        return value if self.data or value is None else REDACTED

    # --- enqueue and fetch -----------------------------------------------------------------
    def check_enqueue(self, queue: str, kind: str, tenant: str | None) -> str | None:
        """The job's tenant as stored: the token's one tenant for a job that names none.
        Refuses (403) a queue, kind or tenant outside the scope."""
        self._check("enqueue into queue", self.queues, [queue])
        self._check("enqueue kind", self.kinds, [kind])
        if self.tenants is None:
            return tenant
        if tenant is None:
            if len(self.tenants) == 1:
                return next(iter(self.tenants))
            raise Problem(
                "forbidden",
                "this token may enqueue for several tenants and the job names none; give the "
                "job type a tenant",
            )
        self._check("enqueue for tenant", self.tenants, [tenant])
        return tenant

    def check_fetch(self, queues: Iterable[str]) -> None:
        """Refuses (403) a fetch from a queue outside the scope, and any fetch by a token
        bound to tenants (claims are not divided by tenant)."""
        if self.tenants is not None:
            raise Problem(
                "forbidden",
                "a token limited to tenants may not fetch jobs (a queue holds every tenant's); "
                "scope worker tokens by queues and kinds",
            )
        self._check("fetch from queue", self.queues, list(queues))

    def skip_kinds(self, known: Iterable[str]) -> list[str]:
        """Of the kinds `known`, those this token may not fetch."""
        if self.kinds is None:
            return []
        return sorted(k for k in set(known) if k not in self.kinds)

    @staticmethod
    def _check(what: str, allowed: frozenset[str] | None, names: list[str]) -> None:
        if allowed is None:
            return
        outside = [n for n in names if n not in allowed]
        if outside:
            raise Problem(
                "forbidden",
                f"this token may not {what} {outside[0]!r} (it may: {', '.join(sorted(allowed))})",
            )


UNLIMITED = Scope()


def refuse_limited(name: str, scope: Scope) -> None:
    """403 for a limited token on a route that does not apply scopes (every tenant's data)."""
    if scope.limited:
        why = "tenants" if scope.tenants is not None else "jobs without their arguments"
        raise Problem(
            "forbidden",
            f"token {name!r} is limited to {why}; this shows or changes what it may not see",
        )
