"""Lag and scaling signals: how old the oldest waiting job of each queue is, how fast jobs
arrive and are served, and how many worker slots a queue needs to keep its lag under a target.

Rates come from the store's event totals (offload/store/_totals.py), sampled twice: the
difference of `enqueued` (arrivals) and of `completed` + `dead` (jobs served) over the time
between the samples, never a scan of rows by time. The mean run time comes from the newest
completed jobs (the sample `/metrics` uses for its run-time histogram).

The recommendation, for a target lag T (seconds a job may wait):

    needed rate = arrival rate + depth / T     (keep up, and drain what waits within T)
    slots       = ceil(needed rate × mean run time)
    workers     = ceil(slots / slots per worker)

A queue with work waiting gets at least one slot. When no job of the queue has completed yet,
its mean run time is unknown and the recommendation keeps the slots its live workers have (at
least one while jobs wait).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from offload.store._contract import JobFilter, QueueCount, Store
from offload.store._totals import JobTotal

SERVED = ("completed", "dead")
RUN_SAMPLE = 500


@dataclass(frozen=True, slots=True)
class QueueSignals:
    """What the store says of one queue now: jobs waiting (`depth`), the age of the oldest
    (seconds, 0 when none waits), arrival and service rates (jobs per second; None until two
    samples were taken), the mean run time of its recent completed jobs (None: none yet) and
    the live workers that serve it."""

    queue: str
    depth: int
    oldest_age: float
    arrival_rate: float | None = None
    service_rate: float | None = None
    run_seconds: float | None = None
    workers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "depth": self.depth,
            "oldest_age_seconds": round(self.oldest_age, 3),
            "arrival_per_second": _round(self.arrival_rate),
            "service_per_second": _round(self.service_rate),
            "run_seconds": _round(self.run_seconds),
            "workers": self.workers,
        }


@dataclass(frozen=True, slots=True)
class Recommendation:
    """Slots and workers a queue needs for a target lag, and the arithmetic that says why."""

    queue: str
    slots: int
    workers: int
    target_lag: float
    slots_per_worker: int
    explanation: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "slots": self.slots,
            "workers": self.workers,
            "target_lag_seconds": self.target_lag,
            "slots_per_worker": self.slots_per_worker,
            "explanation": self.explanation,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class Scaling:
    """An app's scaling settings (`app.scaling`): the lag a queue should stay under and the
    slots of one worker, for the recommendation `/metrics` exports
    (`offload_recommended_workers`) and `offload scale` defaults to."""

    def __init__(self, target_lag: float = 30.0, slots_per_worker: int = 10) -> None:
        self.target_lag = target_lag
        self.slots_per_worker = slots_per_worker


class RateMeter:
    """Arrival and service rates per queue from two samples of the store's event totals: the
    first `sample` returns no rates, each later one the rates since the one before."""

    def __init__(self) -> None:
        self._last: tuple[float, dict[str, tuple[int, int]]] | None = None

    def sample(
        self, store: Store, totals: Sequence[JobTotal] | None = None
    ) -> dict[str, tuple[float, float]]:
        """Rates (arrivals, served) per queue, in jobs per second, since the last sample;
        `totals`: the store's event totals when the caller has just read them."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for t in store.job_totals() if totals is None else totals:
            if t.event == "enqueued":
                counts[t.queue][0] += t.value
            elif t.event in SERVED:
                counts[t.queue][1] += t.value
        now = time.monotonic()
        current = {q: (c[0], c[1]) for q, c in counts.items()}
        last, self._last = self._last, (now, current)
        if last is None or now <= last[0]:
            return {}
        elapsed = now - last[0]
        rates = {}
        for queue, (arrived, served) in current.items():
            a0, s0 = last[1].get(queue, (0, 0))
            rates[queue] = (max(arrived - a0, 0) / elapsed, max(served - s0, 0) / elapsed)
        return rates


def mean_run_seconds(store: Store) -> dict[str, float]:
    """The mean run time per queue of the newest completed jobs."""
    runs: dict[str, list[float]] = defaultdict(list)
    for r in store.job_list(JobFilter(states=["completed"], limit=RUN_SAMPLE)):
        if r.attempted_at is not None and r.finished_at is not None:
            runs[r.queue].append(max(r.finished_at - r.attempted_at, 0.0))
    return {q: sum(v) / len(v) for q, v in runs.items() if v}


def queue_signals(
    store: Store,
    queues: Iterable[str] = (),
    rates: dict[str, tuple[float, float]] | None = None,
    seen_within: float = 60.0,
    counts: Sequence[QueueCount] | None = None,
) -> list[QueueSignals]:
    """The signals of every queue that holds jobs, plus `queues` (declared ones), by name;
    `counts`: the store's job counts when the caller has just read them."""
    depth: dict[str, int] = dict.fromkeys(queues, 0)
    for c in store.job_counts() if counts is None else counts:
        depth.setdefault(c.queue, 0)
        if c.state == "available":
            depth[c.queue] = c.count
    now = store.now()
    oldest = store.queue_oldest([q for q, n in depth.items() if n])
    runs = mean_run_seconds(store)
    workers = store.worker_list(seen_within)
    out = []
    for queue in sorted(depth):
        rate = None if rates is None else rates.get(queue, (0.0, 0.0))
        out.append(
            QueueSignals(
                queue=queue,
                depth=depth[queue],
                oldest_age=max(now - oldest[queue], 0.0) if queue in oldest else 0.0,
                arrival_rate=None if rate is None else rate[0],
                service_rate=None if rate is None else rate[1],
                run_seconds=runs.get(queue),
                workers=sum(1 for w in workers if queue in w.queues),
            )
        )
    return out


def recommend(s: QueueSignals, target_lag: float, slots_per_worker: int = 10) -> Recommendation:
    """The slots and workers queue `s` needs to keep its lag under `target_lag` seconds (the
    module's docstring has the arithmetic), with each step written out."""
    if target_lag <= 0 or slots_per_worker < 1:
        raise ValueError("target_lag must be positive and slots_per_worker at least 1")
    arrival = s.arrival_rate or 0.0
    lines = [
        f"{s.depth} waiting, the oldest for {s.oldest_age:.1f}s; "
        + (
            f"arriving {arrival:.3g}/s, served {s.service_rate or 0.0:.3g}/s"
            if s.arrival_rate is not None
            else "rates not measured (taken as 0)"
        )
        + f"; {s.workers} live worker(s)"
    ]
    needed = arrival + s.depth / target_lag
    lines.append(
        f"needed rate = {arrival:.3g}/s + {s.depth} / {target_lag:g}s = {needed:.3g} jobs/s"
    )
    waiting = s.depth > 0 or arrival > 0
    if s.run_seconds is None:
        slots = max(s.workers * slots_per_worker, 1 if waiting else 0)
        lines.append(
            f"no completed job yet to time: keep {slots} slot(s) (the live workers', at least "
            "one while jobs wait)"
        )
    else:
        exact = needed * s.run_seconds
        slots = max(math.ceil(exact - 1e-9), 1 if waiting else 0)
        lines.append(
            f"slots = {needed:.3g} jobs/s × {s.run_seconds:.3g}s per job = {exact:.3g} → {slots}"
        )
    workers = math.ceil(slots / slots_per_worker)
    lines.append(f"workers = ceil({slots} / {slots_per_worker} slots per worker) = {workers}")
    return Recommendation(s.queue, slots, workers, target_lag, slots_per_worker, lines)


def recommend_all(
    signals: Sequence[QueueSignals], target_lag: float, slots_per_worker: int = 10
) -> list[Recommendation]:
    return [recommend(s, target_lag, slots_per_worker) for s in signals]
