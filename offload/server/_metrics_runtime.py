"""The run-time part of `/metrics`: per job type, runs past max_run_time of jobs that cannot be
interrupted and event-loop blocks of async job code, from the store's run-time reports
(docs/run-time.md), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from offload.store._contract import Store


def runtime_metrics(store: Store, now: float) -> Iterator[Metric]:
    labels = ["queue", "kind", "owner"]
    overruns = CounterMetricFamily(
        "offload_job_overruns",
        "Runs of jobs that cannot be interrupted (no iteration jobs) past their max_run_time.",
        labels=labels,
    )
    worst = GaugeMetricFamily(
        "offload_job_overrun_worst_seconds",
        "The longest run past max_run_time, by kind.",
        labels=labels,
    )
    typical = GaugeMetricFamily(
        "offload_job_overrun_typical_seconds",
        "The mean duration of the runs past max_run_time, by kind.",
        labels=labels,
    )
    blocks = CounterMetricFamily(
        "offload_event_loop_blocks",
        "Times async job code blocked a worker's event loop (0.5 s or more), by kind.",
        labels=labels,
    )
    blocked = CounterMetricFamily(
        "offload_event_loop_blocked_seconds",
        "Seconds the event loop was blocked by the kind's code.",
        labels=labels,
    )
    flagged = GaugeMetricFamily(
        "offload_job_deprioritized",
        "1 while the kind keeps overrunning: its new jobs order after the others of the queue.",
        labels=labels,
    )
    for r in store.kind_runtimes():
        key = [r.queue, r.kind, r.owner or ""]
        overruns.add_metric(key, r.overruns)
        worst.add_metric(key, r.worst_seconds)
        typical.add_metric(key, r.typical_seconds or 0.0)
        blocks.add_metric(key, r.blocks)
        blocked.add_metric(key, r.blocked_seconds)
        flagged.add_metric(key, 1.0 if r.overrunning(now) else 0.0)
    yield overruns
    yield worst
    yield typical
    yield blocks
    yield blocked
    yield flagged
