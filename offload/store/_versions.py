"""Argument versions (part of the store contract; docs/versions.md).

Every job row holds the version of its arguments, stamped at enqueue. Two operations belong to
versions alone: counting the jobs still to run per kind and version (so that an operator sees
when the last job of an old version is gone), and putting back claimed jobs whose version is
newer than their worker knows, without using an attempt. Each engine implements them in its
`_versions.py` with its `versions.sql`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The states of a job that has yet to run (or runs now): an old version among them still needs
# a worker that can upgrade it.
PENDING_STATES = ("available", "scheduled", "retryable", "running")
# The meta key of a refused job: the store's time of its first refusal (its grace starts then).
WAIT_META = "offload.version_wait_since"


@dataclass(frozen=True, slots=True)
class VersionCount:
    """How many jobs of one kind and argument version are in one state."""

    kind: str
    version: int
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """A claimed job whose arguments are newer than its worker knows, given back: its attempt
    is not counted, it runs again after `retry_in` seconds, `error` says why (one error entry
    per stretch of refusals, the latest), and the time of its first refusal is kept in its meta
    under `WAIT_META`. Fenced by the lease token, like every acknowledgement."""

    id: int
    token: int
    error: str
    retry_in: float


class VersionOps(abc.ABC):
    """The part of the store contract for argument versions."""

    @abc.abstractmethod
    def job_versions(
        self, kind: str | None = None, states: Sequence[str] = PENDING_STATES
    ) -> list[VersionCount]:
        """Jobs in `states` per kind, version and state (of one kind when given), by kind,
        version and state."""

    @abc.abstractmethod
    def job_refuse_many(self, refusals: Sequence[Refusal]) -> int:
        """Give back running jobs as `Refusal` says; how many were (the others' leases were
        lost: nothing changed)."""


def version_rows(counts: Sequence[VersionCount]) -> list[dict[str, Any]]:
    """Counts as one row per kind and version (`kind`, `version`, a count per pending state,
    `total`), by kind then version: what `offload jobs versions` and the API show."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for c in counts:
        row = rows.get((c.kind, c.version))
        if row is None:
            row = rows[(c.kind, c.version)] = {
                "kind": c.kind,
                "version": c.version,
                **dict.fromkeys(PENDING_STATES, 0),
                "total": 0,
            }
        row[c.state] = row.get(c.state, 0) + c.count
        row["total"] += c.count
    return [rows[k] for k in sorted(rows)]
