"""`/metrics` reports SLO attainment per job type and the values in force of limit keys."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from offload import Limit, Offload
from offload.store._contract import ClaimParams

from ._helpers import MakeClient


def test_slo_attainment_and_limits_are_exported(app: Offload, make_client: MakeClient) -> None:
    @app.job(slo=3600)
    def report(n: int) -> None: ...

    @app.job(limit=Limit("api:{host}", concurrency=3))
    def call(host: str) -> None: ...

    report.enqueue(1)
    call.enqueue("x")
    assert len(app.store.job_claim(ClaimParams(["default"], 10, "w", 60.0))) == 2
    client: TestClient = make_client(app)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
    }
    assert samples[("offload_slo_started_recent", (("kind", "report"),))] == 1
    assert samples[("offload_slo_on_time_recent", (("kind", "report"),))] == 1
    assert samples[("offload_limit_concurrency", (("key", "api:x"),))] == 3
    assert samples[("offload_limit_running", (("key", "api:x"),))] == 1
