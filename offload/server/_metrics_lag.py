"""The lag, scaling and alerts part of `/metrics`: per queue the age of the oldest waiting job,
arrival and service rates (from the store's event totals, between this scrape and the one
before), and the workers and slots recommended for the app's target lag
(`app.scaling`, offload/app/_scaling.py), for an autoscaler (KEDA's Prometheus scaler) to
follow; and `offload_alert_firing` per alert (offload/app/_alerts.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric

from offload.app._scaling import RateMeter, queue_signals, recommend
from offload.store._contract import QueueCount
from offload.store._totals import JobTotal

if TYPE_CHECKING:
    from offload.app._offload import Offload


def lag_metrics(
    app: Offload,
    meter: RateMeter,
    queues: Iterable[str],
    seen_within: float,
    totals: Sequence[JobTotal] | None = None,
    counts: Sequence[QueueCount] | None = None,
) -> Iterator[Metric]:
    store = app.store
    rates = meter.sample(store, totals)
    signals = queue_signals(store, queues, rates, seen_within, counts)
    oldest = GaugeMetricFamily(
        "offload_queue_oldest_job_age_seconds",
        "Seconds the oldest job waiting in the queue has waited (0: none waits).",
        labels=["queue"],
    )
    arrival = GaugeMetricFamily(
        "offload_queue_arrival_rate",
        "Jobs enqueued per second since the previous scrape, by queue.",
        labels=["queue"],
    )
    service = GaugeMetricFamily(
        "offload_queue_service_rate",
        "Jobs completed or dead per second since the previous scrape, by queue.",
        labels=["queue"],
    )
    workers = GaugeMetricFamily(
        "offload_recommended_workers",
        "Workers the queue needs to keep its lag under the target (offload scale).",
        labels=["queue"],
    )
    slots = GaugeMetricFamily(
        "offload_recommended_slots",
        "Job slots (workers x concurrency) the queue needs for the target lag.",
        labels=["queue"],
    )
    target = app.scaling.target_lag
    per_worker = app.scaling.slots_per_worker
    for s in signals:
        oldest.add_metric([s.queue], s.oldest_age)
        arrival.add_metric([s.queue], s.arrival_rate or 0.0)
        service.add_metric([s.queue], s.service_rate or 0.0)
        r = recommend(s, target, per_worker)
        workers.add_metric([s.queue], r.workers)
        slots.add_metric([s.queue], r.slots)
    yield oldest
    yield arrival
    yield service
    yield workers
    yield slots
    yield GaugeMetricFamily(
        "offload_target_lag_seconds", "The target lag the recommendations are for.", value=target
    )

    firing = GaugeMetricFamily(
        "offload_alert_firing",
        "1 while the alert fires, 0 otherwise, by alert name.",
        labels=["alert", "condition"],
    )
    states = app.alerts.states()
    for rule in app.alerts.rules():
        state = states.get(rule.name)
        firing.add_metric([rule.name, rule.condition], 1.0 if state and state.firing else 0.0)
    yield firing
