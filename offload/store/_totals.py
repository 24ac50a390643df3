"""Event totals by queue and job type, and discarding a job (part of the store contract).

Totals are derived so that enqueue, claim, complete and fail write nothing extra of their own:
what the job rows say now (a row is one enqueued job; its `attempt` counts its starts; its state
says whether it ended completed, dead or shed), read from the rows' kept counts by queue, kind
and state (`offload_counts`, kept by triggers in the statement that changes a job, so reading
them costs the same with 5M jobs as with 5), plus the table `offload_totals`, which keeps what
deleted rows had counted (the pruner and a discard add to it in the transaction that deletes
them) and what workers report with their heartbeat (failed and retried attempts, which leave
no count in a row). Each engine implements these in its `_totals.py` with its `totals.sql`.
"""

from __future__ import annotations

import abc
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

EVENTS = ("enqueued", "started", "completed", "failed", "retried", "dead", "shed")
ENDED = ("completed", "dead", "shed")  # final states whose rows count as an event
REPORTED = ("failed", "retried")  # events only workers can tell
# How long the 10-second spans of ended jobs (`job_finished_since`) are kept: the overview's
# longest range (7 days) and a day.
ENDED_KEPT = 8 * 86400.0
ENDED_SPAN = 10  # seconds; the triggers of the migrations that keep the spans say the same


def span_edge(since: float) -> float:
    """The start of the first whole span at or after `since`: before it, `job_finished_since`
    counts rows; from it on, the kept spans."""
    return float(math.ceil(since / ENDED_SPAN) * ENDED_SPAN)


@dataclass(frozen=True, slots=True)
class JobTotal:
    """How many times `event` happened to jobs of one queue and kind (a delta when added)."""

    queue: str
    kind: str
    event: str
    value: int


def row_events(queue: str, kind: str, state: str, jobs: int, attempts: int) -> list[JobTotal]:
    """What `jobs` rows of one queue, kind and state with `attempts` starts in all count."""
    out = [JobTotal(queue, kind, "enqueued", jobs), JobTotal(queue, kind, "started", attempts)]
    if state in ENDED:
        out.append(JobTotal(queue, kind, state, jobs))
    return out


def summed(totals: Iterable[JobTotal]) -> list[JobTotal]:
    """Totals of the same queue, kind and event added up, zeros left out, in a stable order."""
    sums: Counter[tuple[str, str, str]] = Counter()
    for t in totals:
        sums[(t.queue, t.kind, t.event)] += t.value
    return [JobTotal(q, k, e, v) for (q, k, e), v in sorted(sums.items()) if v]


def from_rows(rows: Iterable[Sequence[Any]]) -> list[JobTotal]:
    """Totals from the rows of an engine's `job_totals` query: (queue, kind, state, jobs,
    attempts) for the jobs in the table, (queue, kind, NULL, event, value) for kept totals."""
    found: list[JobTotal] = []
    for queue, kind, state, a, b in rows:
        if state is None:
            found.append(JobTotal(queue, kind, a, int(b)))
        else:
            found += row_events(queue, kind, state, int(a), int(b))
    return summed(found)


class TotalsOps(abc.ABC):
    """The part of the store contract for event totals and discarding jobs."""

    @abc.abstractmethod
    def job_discard(self, job_id: int) -> bool:
        """Delete a job in any state, keeping what it counted in the totals; False when there
        is none. A running job's worker is fenced off: its heartbeat reports the lease lost
        and its acknowledgement is counted stale."""

    @abc.abstractmethod
    def job_totals(self) -> list[JobTotal]:
        """Every event total by queue and kind (rows and kept totals read in one snapshot)."""

    @abc.abstractmethod
    def counts_fold(self) -> int:
        """Fold the deltas of the kept job counts into the counts, so that reading them stays
        a few rows however busy the store was; how many deltas it folded (0 where the engine
        updates the counts in place). Readers add unfolded deltas up: this is upkeep, run by
        the leader and before each read."""

    @abc.abstractmethod
    def job_totals_add(self, deltas: Sequence[JobTotal]) -> None:
        """Add reported events to the kept totals, one upsert per (queue, kind, event)."""
