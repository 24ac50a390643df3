"""Dispatch ordering: deadlines and fairness as one key computed at enqueue.

Start-time fair queuing (Goyal et al., 1996), with job types and tenants as flows:

- A *lane* is a queue at one priority. Its virtual clock `V` is the start tag of the job being
  served: the lane's head (the available job a claim takes next) or, when the head lags behind
  because it waits on a saturated limit key or a long SLO, the largest start tag claimed so far.
  So `V = max(stored clock, head's start tag)`. A plain claim takes the head, so it need not
  write the clock; `write_clock` says which claims do: every claim through limits (it may pass
  a head stuck on a saturated key), a claim that took fewer jobs than asked (the lane may be
  empty: no head to stand for the clock), and one in `CLOCK_EVERY` claims that took jobs with
  an SLO (a long SLO holds the head back; the clock then trails by at most that many claims).
  A claim of a full batch of plain jobs, the common case under a backlog, writes nothing.
  Jobs that come back to available (retries, releases, rescues) take the head's start if
  theirs is behind, so the head never goes back.
- A *flow* is a job type and a tenant within a lane. It keeps a finish tag `F`.
- A job of a flow starts at `S = max(V, F)` and moves the flow's finish on by its *stride*,
  `cost / (type weight * tenant weight)`: `F = S + stride`. A flow with a long backlog has
  its later jobs far ahead in virtual time, so a flow that starts now (at `V`) interleaves with
  it at once; two backlogged flows are served in proportion to their weights.
- The claim orders a lane by `order_key = S + slo` (then id): a job that tolerates a long wait
  stands further back, so a job with a 1 s SLO is taken before a job with a 1 h SLO enqueued
  at the same time, and when everything is overdue the strides decide the shares.

A job type that keeps running past its `max_run_time` without being able to stop (reported by
workers, offload/store/_runtime.py) is de-prioritized: its new jobs get `OVERRUN_PENALTY` added
to their start tag at enqueue, so that they order after the other jobs of their lane (those
enqueued within that much virtual time), while the flow's finish tag, and so the virtual time
the flow reserves, stays as it was. Its jobs still run, after the others, and never starve:
once one is claimed its lane's clock moves to it.

Virtual time is in "virtual seconds": with `cost` the typical run time of a job in seconds,
one busy flow advances its lane's clock about as fast as real time.

The engines turn this into SQL. A batch of jobs reserves virtual time once per flow (read `V`,
advance `F` by the sum of its strides, in one statement), then tags its jobs in order; jobs
that only become available later (scheduled) are tagged when they are promoted. A job stores
its start tag `S` (NULL until tagged); its `order_key` is derived from it by the jobs table
itself (a generated column, 0 while untagged), so that the rule is written once. Each
engine's schema also holds the lane heads (the view `offload_lane_heads`: a lane's stored
clock and its head's start tag) and, on PostgreSQL, the reservation (`offload_reserve`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

NO_TENANT = ""  # the tenant column of a flow whose jobs name no tenant
CLOCK_EVERY = 16  # a store writes its lanes' clocks on every this many plain claims
# Added to the start tag of a new job whose kind keeps overrunning its max_run_time: a day of
# virtual time, so it orders after a day's worth of the others' work (docs/scheduling.md).
OVERRUN_PENALTY = 86400.0

Lane = tuple[str, int]  # (queue, priority)
Flow = tuple[str, int, str, str]  # (queue, priority, kind, tenant or NO_TENANT)


class Arrival(NamedTuple):
    """A job entering its lane: what tagging needs to know of it (a named tuple: one is made
    per job enqueued, in the insert's hot loop)."""

    queue: str
    priority: int
    kind: str
    tenant: str | None
    stride: float
    slo: float | None
    due: float  # when it became due (scheduled_at): jobs of one flow are tagged in this order
    penalty: float = 0.0  # added to its start tag only (OVERRUN_PENALTY), not to its flow's

    @property
    def flow(self) -> Flow:
        return (self.queue, self.priority, self.kind, self.tenant or NO_TENANT)


class Tag(NamedTuple):
    """A job's place: its start in virtual time (what the store keeps) and the key the claim
    orders by (which the store derives from it)."""

    start: float
    order_key: float


_NO_TAG = Tag(0.0, 0.0)


def stride(cost: float, weight: float, tenant_weight: float = 1.0) -> float:
    """The virtual time one job takes from its flow's share."""
    value = cost / (weight * tenant_weight)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"cost / weight must be a positive finite number, got {value!r}")
    return value


def order_key(start: float, slo: float | None) -> float:
    return start + (slo or 0.0)


def clock(stored: float | None, head: float | None) -> float:
    """A lane's virtual clock: its stored clock, or its head's start tag when that is ahead."""
    return max(stored or 0.0, head if head is not None else 0.0)


class ClockWrites:
    """Which claims of one store write their lanes' stored clocks (see the module's doc)."""

    def __init__(self) -> None:
        self.slo_claims = 0

    def write_clock(self, limited: bool, short: bool, slo: bool) -> bool:
        if limited or short:
            return True
        if not slo:
            return False
        self.slo_claims += 1
        if self.slo_claims >= CLOCK_EVERY:
            self.slo_claims = 0
            return True
        return False


def reserve(clock: float, finish: float | None, added: float) -> tuple[float, float]:
    """One flow's reservation: its base start and its new finish tag."""
    base = clock if finish is None else max(clock, finish)
    return base, base + added


def demand(arrivals: Iterable[Arrival]) -> dict[Flow, float]:
    """The virtual time each flow of a batch needs: the sum of its strides."""
    out: dict[Flow, float] = {}
    for a in arrivals:
        flow = (a.queue, a.priority, a.kind, a.tenant or NO_TENANT)
        out[flow] = out.get(flow, 0.0) + a.stride
    return out


def tag(arrivals: Sequence[Arrival], bases: Mapping[Flow, float]) -> list[Tag]:
    """Tags for a batch, in input order: each flow's jobs take consecutive starts from its
    base, in the order they became due (then input order)."""
    n = len(arrivals)
    due = [a.due for a in arrivals]
    order: Iterable[int] = range(n)
    if any(due[i] > due[i + 1] for i in range(n - 1)):
        order = sorted(range(n), key=lambda i: (due[i], i))
    tags: list[Tag] = [_NO_TAG] * n
    at = dict(bases)
    for i in order:
        a = arrivals[i]
        flow = (a.queue, a.priority, a.kind, a.tenant or NO_TENANT)
        start = at[flow]
        at[flow] = start + a.stride
        if a.penalty:
            start += a.penalty
        tags[i] = Tag(start, start + a.slo if a.slo else start)
    return tags


def advance(
    clocks: Mapping[Lane, float], claimed: Iterable[tuple[Lane, float]]
) -> dict[Lane, float]:
    """Lane clocks after a claim: each moves up to the largest start tag claimed from it."""
    out: dict[Lane, float] = {}
    for lane, start in claimed:
        best = out.get(lane, clocks.get(lane, -math.inf))
        if start > best:
            out[lane] = start
    return out
