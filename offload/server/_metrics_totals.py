"""The event totals part of `/metrics`: jobs enqueued, started, completed, failed, retried,
dead and shed, by queue and kind, as the store derives them (offload/store/_totals.py).

They are exact across processes and restarts and cost the hot paths nothing: the store reads
them from its rows and its kept totals at scrape. Failed and retried attempts reach the store
with workers' heartbeats, so they lag by up to one heartbeat interval. A job run again by hand
(retry) counts its new start and outcome, and no longer counts the outcome it had before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, Metric

from offload.store._contract import Store
from offload.store._totals import EVENTS, JobTotal

HELP = {
    "enqueued": "Jobs enqueued (shed at enqueue included).",
    "started": "Attempts started: claims that ran (not those released at shutdown or shed).",
    "completed": "Jobs that completed.",
    "failed": "Attempts that failed with an error, as workers reported them.",
    "retried": "Failed attempts that were scheduled to run again.",
    "dead": "Jobs that ended dead (out of attempts, or abandoned).",
    "shed": "Jobs shed: expired, or matched a blackhole rule.",
}


def totals_metrics(store: Store, totals: Sequence[JobTotal] | None = None) -> Iterator[Metric]:
    families = {
        event: CounterMetricFamily(f"offload_jobs_{event}", HELP[event], labels=["queue", "kind"])
        for event in EVENTS
    }
    for t in store.job_totals() if totals is None else totals:
        family = families.get(t.event)
        if family is not None:
            family.add_metric([t.queue, t.kind], t.value)
    yield from families.values()
