"""`/metrics` for Prometheus: what the store knows, read at scrape time (at most once a
second per server process, however many scrape), and what this server process itself did.

From the store (the same on every replica): totals of jobs enqueued, started, completed,
failed, retried, dead and shed by queue and kind; jobs by queue and state, queue depth, jobs that
finished in the last minute/5 minutes/hour (`job_finished_since`), the store's own counters
(stale acknowledgements, rescued and abandoned jobs), job types past their max_run_time or
blocking the event loop (`_metrics_runtime.py`), the age of each queue's oldest job, arrival and
service rates, recommended workers and firing alerts (`_metrics_lag.py`), workers alive and
the jobs they run, and wait/run time distributions of recent completed jobs (a sample, so gauge
histograms: typed `gaugehistogram` in OpenMetrics, `histogram` with `_gcount`/`_gsum` in the
classic format).
From this process (per replica, reset on restart): jobs enqueued over HTTP, jobs handed to,
completed and failed by HTTP workers, stale acknowledgements they sent.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from offload._states import STATES
from offload.app._scaling import RateMeter
from offload.server._metrics_dispatch import dispatch_metrics
from offload.server._metrics_events import events_metrics
from offload.server._metrics_lag import lag_metrics
from offload.server._metrics_runtime import runtime_metrics
from offload.server._metrics_totals import totals_metrics
from offload.server._waiting import TtlCache
from offload.store._contract import JobFilter
from offload.store._workflows import WORKFLOW_STATES

if TYPE_CHECKING:
    from offload.app._offload import Offload

WINDOWS = (("1m", 60.0), ("5m", 300.0), ("1h", 3600.0))
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
SAMPLE = 500


class HttpCounters:
    """Counters of what this server process did, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.enqueued = Counter(
            "offload_http_enqueued",
            "Jobs enqueued through POST /jobs by this server process.",
            ["queue", "kind"],
            registry=self.registry,
        )
        self.fetched = Counter(
            "offload_http_fetched",
            "Jobs handed to HTTP workers (started) by this server process.",
            ["queue", "kind"],
            registry=self.registry,
        )
        self.completed = Counter(
            "offload_http_completed",
            "Jobs HTTP workers completed through this server process.",
            registry=self.registry,
        )
        self.failed = Counter(
            "offload_http_failed",
            "Failed attempts HTTP workers reported; outcome retry or dead.",
            ["queue", "kind", "outcome"],
            registry=self.registry,
        )
        self.stale = Counter(
            "offload_http_stale_acks",
            "Acknowledgements from HTTP workers refused because their lease was stale.",
            registry=self.registry,
        )


class StoreCollector(Collector):
    """Reads the store when Prometheus scrapes, at most once per `cache_seconds` however many
    scrape at once (the metrics read then serve every scrape of the period)."""

    def __init__(
        self,
        app: Offload,
        seen_within: float,
        queues: tuple[str, ...] = (),
        cache_seconds: float = 1.0,
    ) -> None:
        self.app = app
        self.seen_within = seen_within
        self.queues = queues
        self.cache = TtlCache(cache_seconds)
        self.meter = RateMeter()  # arrival and service rates between scrapes

    def collect(self) -> Iterator[Metric]:
        yield from self.cache.get("store", lambda: list(self._read()))

    def _read(self) -> Iterator[Metric]:
        store = self.app.store
        self.app.tally.flush(store)  # HTTP workers' failed attempts seen by this process
        totals = store.job_totals()  # read once: the counters and the rates both use them
        yield from totals_metrics(store, totals)  # event totals by queue and kind
        jobs = GaugeMetricFamily(
            "offload_jobs", "Jobs in the store by queue and state.", labels=["queue", "state"]
        )
        depth = GaugeMetricFamily(
            "offload_queue_depth", "Jobs available to run now, by queue.", labels=["queue"]
        )
        by_queue: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
        for queue in {j.options_.queue for j in self.app.jobs.values()} | set(self.queues):
            by_queue[queue]
        rows = store.job_counts()  # read once: the gauges and the lag signals both use them
        for row in rows:
            by_queue[row.queue][row.state] = row.count
        for queue, counts in sorted(by_queue.items()):
            for state, n in counts.items():
                jobs.add_metric([queue, state], n)
            depth.add_metric([queue], counts.get("available", 0))
        yield jobs
        yield depth
        yield from lag_metrics(self.app, self.meter, by_queue, self.seen_within, totals, rows)

        now = store.now()
        finished = GaugeMetricFamily(
            "offload_jobs_finished_recent",
            "Jobs now completed or dead that finished within the window, and jobs now "
            "retryable whose last attempt failed within it.",
            labels=["state", "window"],
        )
        for label, seconds in WINDOWS:
            for state, n in sorted(store.job_finished_since(now - seconds).items()):
                finished.add_metric([state, label], n)
        yield finished
        yield from dispatch_metrics(store, now)  # SLO attainment and limit keys
        yield from runtime_metrics(store, now)  # kinds over max_run_time, event-loop blocks
        yield from events_metrics(self.app)  # topics, consumer lag, subscription backlog
        # Workflows by state (docs/workflows.md): alert on offload_workflows{state="stuck"} > 0.
        flows = GaugeMetricFamily(
            "offload_workflows",
            "Workflows by state; a stuck one is a saga whose undo job ended dead or cancelled.",
            labels=["state"],
        )
        counted = store.workflow_counts()
        for state in WORKFLOW_STATES:
            flows.add_metric([state], counted.get(state, 0))
        yield flows

        events = CounterMetricFamily(
            "offload_store_events",
            "Counters the store keeps: stale_acks, rescued, abandoned ...",
            labels=["event"],
        )
        for name, value in sorted(store.counters().items()):
            events.add_metric([re.sub(r"[^a-zA-Z0-9_:]", "_", name)], value)
        yield events

        workers = store.worker_list(self.seen_within)
        yield GaugeMetricFamily(
            "offload_workers_alive",
            "Workers (Python and HTTP) that reported within a lease.",
            value=len(workers),
        )
        yield GaugeMetricFamily(
            "offload_workers_running_jobs",
            "Jobs the live workers last said they were running.",
            value=sum(w.running for w in workers),
        )
        yield from self._durations()

    def _durations(self) -> Iterator[Metric]:
        recent = self.app.store.job_list(JobFilter(states=["completed"], limit=SAMPLE))
        waits: dict[tuple[str, str], list[float]] = defaultdict(list)
        runs: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in recent:
            if r.attempted_at is None or r.finished_at is None:
                continue
            waits[(r.queue, r.kind)].append(max(r.attempted_at - r.scheduled_at, 0.0))
            runs[(r.queue, r.kind)].append(max(r.finished_at - r.attempted_at, 0.0))
        for name, what, samples in (
            ("offload_job_wait_seconds_recent", "scheduled to last start", waits),
            ("offload_job_run_seconds_recent", "last start to finish", runs),
        ):
            family = GaugeHistogramMetricFamily(
                name,
                f"Time from {what} of the {SAMPLE} newest completed jobs (a sample).",
                labels=["queue", "kind"],
            )
            for (queue, kind), values in sorted(samples.items()):
                family.add_metric([queue, kind], _buckets(values), gsum_value=sum(values))
            yield family


def _buckets(values: list[float]) -> list[tuple[str, float]]:
    out = [(str(b), float(sum(1 for v in values if v <= b))) for b in BUCKETS]
    out.append(("+Inf", float(len(values))))
    return out


class Metrics:
    """One registry: the store's metrics (read at scrape time), then this process's counters."""

    def __init__(
        self,
        app: Offload,
        seen_within: float,
        queues: tuple[str, ...],
        cache_seconds: float = 1.0,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(app, seen_within, queues, cache_seconds))
        self.counters = HttpCounters(self.registry)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for (OpenMetrics or text 0.0.4)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
