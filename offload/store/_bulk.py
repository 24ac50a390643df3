"""Operating on many jobs at once: search by filter, and bulk retry, cancel and discard (part of
the store contract).

A `JobMatch` says which jobs: states, kind, queue, insert and finish times, and a piece of text
of the arguments or of the last error (a case-insensitive substring, bound as a parameter, at
most `MAX_TEXT` characters). `job_bulk` acts on the matching jobs that its action applies to,
with the same effect per job as `job_retry`, `job_cancel` and `job_discard`, in batches of
bounded size, each its own transaction, so that workers go on between them however many jobs
match. Jobs inserted after it began are left alone. Each engine implements these in its
`_bulk.py` with the SQL of its `bulk.sql`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from offload._errors import ConfigurationError
from offload._states import STATES
from offload._text import text_problem

if TYPE_CHECKING:
    from offload.store._contract import JobRecord

BULK_ACTIONS = ("retry", "cancel", "discard")
# The states each action applies to, as the single-job operations define them.
RETRYABLE_FROM = ("dead", "cancelled", "shed", "completed", "retryable", "scheduled")
CANCELLABLE_FROM = ("scheduled", "available", "retryable")
DISCARDABLE_FROM = STATES
APPLIES_TO = {"retry": RETRYABLE_FROM, "cancel": CANCELLABLE_FROM, "discard": DISCARDABLE_FROM}
MAX_TEXT = 200  # characters of a text to search for
BATCH = 500  # jobs changed per transaction by default
MAX_BATCH = 10_000
WINDOW = 20  # a batch looks at ids in a window of WINDOW * batch ids at most (see `walk`)


@dataclass(frozen=True, slots=True)
class JobMatch:
    """Which jobs a search or a bulk operation is about; every field given must hold (None:
    any). Times are epoch seconds: `*_since` inclusive, `*_until` exclusive; a job that has
    not finished matches no `finished_*` bound. `args_contain` is a piece of the arguments'
    JSON text, `error_contain` a piece of the last error's message, both matched ignoring
    case."""

    states: tuple[str, ...] | None = None
    kind: str | None = None
    queue: str | None = None
    inserted_since: float | None = None
    inserted_until: float | None = None
    finished_since: float | None = None
    finished_until: float | None = None
    args_contain: str | None = None
    error_contain: str | None = None

    def __post_init__(self) -> None:
        if self.states is not None:
            if isinstance(self.states, str):
                raise ConfigurationError("JobMatch.states is a tuple of state names, not a str")
            object.__setattr__(self, "states", tuple(self.states))
            unknown = [s for s in self.states if s not in STATES]
            if unknown:
                raise ConfigurationError(
                    f"unknown job state {unknown[0]!r}: choose from {', '.join(STATES)}"
                )
        for name in ("kind", "queue", "args_contain", "error_contain"):
            text = getattr(self, name)
            if text is None:
                continue
            if not isinstance(text, str) or not text:
                raise ConfigurationError(f"{name} must be a non-empty text")
            if len(text) > MAX_TEXT:
                raise ConfigurationError(
                    f"{name} is {len(text)} characters long; give at most {MAX_TEXT}"
                )
            problem = text_problem(text)
            if problem is not None:
                raise ConfigurationError(f"{name} holds {problem}, which no job holds")
        for name in ("inserted_since", "inserted_until", "finished_since", "finished_until"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value != value):
                raise ConfigurationError(f"{name} must be a time in epoch seconds")

    @property
    def empty(self) -> bool:
        """True when it matches every job (no field given)."""
        return all(
            getattr(self, name) is None
            for name in (
                "states",
                "kind",
                "queue",
                "inserted_since",
                "inserted_until",
                "finished_since",
                "finished_until",
                "args_contain",
                "error_contain",
            )
        )

    def states_for(self, action: str) -> list[str]:
        """The states a job must be in to be matched and acted on by `action` (in
        STATES order)."""
        allowed = APPLIES_TO[check_action(action)]
        if self.states is None:
            return list(allowed)
        return [s for s in allowed if s in self.states]


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What `job_bulk` did: the action, whether it was a dry run, and how many jobs it
    changed (a dry run: how many it would change now)."""

    action: str
    dry_run: bool
    count: int


def check_action(action: str) -> str:
    """`action` when it is one of BULK_ACTIONS; a ConfigurationError naming them otherwise."""
    if action not in APPLIES_TO:
        raise ConfigurationError(
            f"unknown bulk action {action!r}: choose from {', '.join(BULK_ACTIONS)}"
        )
    return action


def check_batch(batch: int) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise ConfigurationError(f"batch must be a whole number from 1 to {MAX_BATCH}")
    return batch


def walk(
    first: int, last: int, batch: int, step: Callable[[int, int], tuple[int | None, int, int]]
) -> int:
    """Walk the ids after `first` up to `last` in windows, calling `step(after, upto)` for the
    next batch in each: it acts on up to `batch` matching jobs with ids in (after, upto] and
    answers the last id it picked, how many it picked and how many it changed. A window holds
    at most WINDOW * batch ids, so that no step scans more than that many rows, whatever the
    filter and however few jobs match; a full batch means more may be left in its window.
    Returns how many jobs were changed in all."""
    window = WINDOW * batch
    after, total = first, 0
    while after < last:
        upto = min(last, after + window)
        picked_last, picked, changed = step(after, upto)
        total += changed
        after = picked_last if picked >= batch and picked_last is not None else upto
    return total


class BulkOps(abc.ABC):
    """The part of the store contract for searching jobs and acting on many at once."""

    @abc.abstractmethod
    def job_search(
        self, match: JobMatch, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        """Jobs matching `match`, newest first: at most `limit`, with ids below `before_id`
        when given (to page)."""

    @abc.abstractmethod
    def job_bulk(
        self, action: str, match: JobMatch, *, dry_run: bool = False, batch: int = BATCH
    ) -> BulkResult:
        """Retry, cancel or discard (`action`) every job that matches and that the action
        applies to (see APPLIES_TO), as `job_retry`, `job_cancel` and `job_discard` do, at
        most `batch` jobs per transaction. A dry run changes nothing and counts them."""

    def job_retry_where(self, match: JobMatch, *, dry_run: bool = False) -> int:
        """`job_bulk("retry", match)`: how many jobs it retried (or would, on a dry run)."""
        return self.job_bulk("retry", match, dry_run=dry_run).count

    def job_cancel_where(self, match: JobMatch, *, dry_run: bool = False) -> int:
        """`job_bulk("cancel", match)`: how many jobs it cancelled (or would)."""
        return self.job_bulk("cancel", match, dry_run=dry_run).count

    def job_discard_where(self, match: JobMatch, *, dry_run: bool = False) -> int:
        """`job_bulk("discard", match)`: how many jobs it discarded (or would)."""
        return self.job_bulk("discard", match, dry_run=dry_run).count
