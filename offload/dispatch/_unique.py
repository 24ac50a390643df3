"""Unique jobs: which jobs count as the same, over which period and in which states.

`Unique(keys=["user_id"], period=timedelta(minutes=5))` on a job type makes an enqueue that
finds a job of the same type with the same `user_id`, inserted within the last five minutes and
still in one of `states`, return that job (`job.duplicate is True`) instead of inserting.

The store keeps a non-unique, indexed key per job: a hash of the job type and the canonical
JSON of the chosen arguments. The check and the insert run in one transaction that holds a lock
on that key (SQLite's writer lock; a transaction-scoped advisory lock of the key's hash on
PostgreSQL), so two concurrent enqueues cannot both insert.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from offload._errors import ConfigurationError, InvalidArgumentsError
from offload._states import STATES

PENDING_STATES = ("scheduled", "available", "running", "retryable")
_ALL_STATES = STATES


@dataclass(frozen=True, slots=True)
class Unique:
    """How to recognise a duplicate of a job.

    keys: the arguments that make two jobs the same (None: all of them).
    period: how recently the other job must have been inserted (None: at any time).
    states: the states the other job must be in (default: not finished yet — scheduled,
        available, running or retryable; add "completed" to also skip work done recently).
    """

    keys: Sequence[str] | None = None
    period: float | timedelta | None = None
    states: Sequence[str] = PENDING_STATES

    def validate(self, job: str) -> Unique:
        keys = self.keys
        if keys is not None:
            if isinstance(keys, str) or not all(isinstance(k, str) and k for k in keys):
                raise ConfigurationError(
                    f"job {job!r}: unique keys must be a list of argument names, "
                    'e.g. Unique(keys=["user_id"])'
                )
            keys = tuple(sorted(set(keys)))
        period = self.period
        if isinstance(period, timedelta):
            period = period.total_seconds()
        if period is not None:
            if isinstance(period, bool) or not isinstance(period, int | float) or period <= 0:
                raise ConfigurationError(
                    f"job {job!r}: unique period must be positive seconds or a timedelta"
                )
            period = float(period)
        if isinstance(self.states, str) or not self.states:
            raise ConfigurationError(f"job {job!r}: unique states must be a non-empty list")
        unknown = [s for s in self.states if s not in _ALL_STATES]
        if unknown:
            raise ConfigurationError(
                f"job {job!r}: unknown state {unknown[0]!r} in unique states; "
                f"states are {', '.join(_ALL_STATES)}"
            )
        return Unique(keys, period, tuple(dict.fromkeys(self.states)))


@dataclass(frozen=True, slots=True)
class UniqueKey:
    """What the store needs to find a duplicate: the key, the period and the states."""

    key: str
    period: float | None
    states: tuple[str, ...]


def unique_key(unique: Unique, kind: str, arguments: Mapping[str, Any]) -> UniqueKey:
    """The uniqueness key of a job of `kind` with these arguments (`unique` validated)."""
    if unique.keys is None:
        chosen: Mapping[str, Any] = arguments
    else:
        missing = [k for k in unique.keys if k not in arguments]
        if missing:
            raise InvalidArgumentsError(
                f"{kind}(): unique key {missing[0]!r} is not one of its arguments "
                f"({', '.join(sorted(arguments)) or 'none given'})",
                argument=missing[0],
            )
        chosen = {k: arguments[k] for k in unique.keys}
    text = json.dumps([kind, chosen], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    period = unique.period
    if isinstance(period, timedelta):
        period = period.total_seconds()
    return UniqueKey(digest, None if period is None else float(period), tuple(unique.states))
