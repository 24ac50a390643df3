"""`/metrics` reports each queue's lag (the age of its oldest waiting job), arrival and service
rates, the workers recommended for the app's target lag, and whether each alert fires; and the
Prometheus alerting rules shipped in examples/ name only metrics offload exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from offload import Offload
from offload.store._alerts import FIRING
from offload.store._contract import NewJob

from ._helpers import MakeClient

RULES = Path(__file__).parents[2] / "examples" / "prometheus" / "offload-alerts.yml"


def scrape(
    app: Offload, make_client: MakeClient
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = make_client(app).get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_lag_recommendations_and_alerts_are_exported(app: Offload, make_client: MakeClient) -> None:
    now = app.store.now()
    app.store.job_insert_many(
        [NewJob(kind="send", queue="mail", args={}, scheduled_at=now - 100) for _ in range(3)]
    )
    app.scaling.target_lag = 60.0
    app.alert("mail-deep", "queue_depth", 2, target="mail")
    app.alert("quiet", "dead_per_hour", 5)
    app.store.alert_record("mail-deep", FIRING, 3.0, 2.0, "deep")

    samples = scrape(app, make_client)

    assert samples[("offload_queue_oldest_job_age_seconds", (("queue", "mail"),))] >= 100
    assert samples[("offload_queue_arrival_rate", (("queue", "mail"),))] == 0  # first scrape
    # Three waiting, nothing timed yet: one slot, so one worker.
    assert samples[("offload_recommended_workers", (("queue", "mail"),))] == 1
    assert samples[("offload_recommended_slots", (("queue", "mail"),))] == 1
    assert samples[("offload_target_lag_seconds", ())] == 60
    firing = (("alert", "mail-deep"), ("condition", "queue_depth"))
    assert samples[("offload_alert_firing", firing)] == 1
    quiet = (("alert", "quiet"), ("condition", "dead_per_hour"))
    assert samples[("offload_alert_firing", quiet)] == 0


def test_the_prometheus_rules_name_only_exported_metrics(
    app: Offload, make_client: MakeClient
) -> None:
    app.alert("x", "workers_alive", 1)
    text = make_client(app).get("/metrics").text
    exported = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        if family.type == "counter":  # exposed with _total, samples or not
            exported.add(f"{family.name}_total")
        exported.update(s.name for s in family.samples)

    document = yaml.safe_load(RULES.read_text("utf-8"))
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert len(rules) >= 6
    named = set()
    for rule in rules:
        assert rule["alert"] and rule["expr"] and rule["annotations"]["summary"]
        named.update(re.findall(r"\boffload_[a-z_]+", str(rule["expr"])))
    assert {"offload_queue_oldest_job_age_seconds", "offload_alert_firing"} <= named
    assert named - exported == set()
