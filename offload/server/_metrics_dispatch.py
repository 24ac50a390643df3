"""The dispatch part of `/metrics`: SLO attainment per job type over the last hour, and the
values in force of limit keys (adaptive ones as they stand), read from the store at scrape.

Limit keys can be many (one per shop, say): at most `MAX_KEYS` are exported, adaptive keys
first, so that a scrape stays small; `offload stats --json` lists them all.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from offload.store._contract import Store

SLO_WINDOW = 3600.0
MAX_KEYS = 100


def dispatch_metrics(store: Store, now: float) -> Iterator[Metric]:
    started = GaugeMetricFamily(
        "offload_slo_started_recent",
        "Jobs with an SLO started (claimed) in the last hour, by kind.",
        labels=["kind"],
    )
    on_time = GaugeMetricFamily(
        "offload_slo_on_time_recent",
        "Of those, how many started by their deadline, by kind.",
        labels=["kind"],
    )
    late = GaugeMetricFamily(
        "offload_slo_late_seconds_recent",
        "How late the others started: average and worst, by kind.",
        labels=["kind", "stat"],
    )
    for s in store.job_slo_attainment(now - SLO_WINDOW):
        started.add_metric([s.kind], s.started)
        on_time.add_metric([s.kind], s.on_time)
        late.add_metric([s.kind, "avg"], s.late_avg or 0.0)
        late.add_metric([s.kind, "max"], s.late_max or 0.0)
    yield started
    yield on_time
    yield late

    keys = sorted(store.limit_list(), key=lambda x: (x.adaptive is None, x.key))[:MAX_KEYS]
    concurrency = GaugeMetricFamily(
        "offload_limit_concurrency", "Concurrency in force per limit key.", labels=["key"]
    )
    running = GaugeMetricFamily(
        "offload_limit_running", "Jobs of the key running now.", labels=["key"]
    )
    rate = GaugeMetricFamily(
        "offload_limit_rate_per_second", "Rate in force per limit key.", labels=["key"]
    )
    throttles = CounterMetricFamily(
        "offload_limit_throttles", "Throttling signals reported for the key.", labels=["key"]
    )
    for x in keys:
        if x.concurrency is not None:
            concurrency.add_metric([x.key], x.concurrency)
        running.add_metric([x.key], x.running)
        if x.rate is not None and x.period:
            rate.add_metric([x.key], x.rate / x.period)
        throttles.add_metric([x.key], x.throttles)
    yield concurrency
    yield running
    yield rate
    yield throttles
