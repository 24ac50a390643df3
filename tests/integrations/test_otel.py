"""OpenTelemetry (offload.integrations.otel): one trace from a web request through a chain of
jobs, each attempt a child span of the enqueue that caused it, with the job's attributes; spans
for enqueues and claim batches. Recorded by the SDK's in-memory exporter; the jobs run through
`offload.testing.drain` (the real executor, in this process), and through a real worker
process whose spans a test app module writes to a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

import offload
from offload.integrations.otel import instrument
from offload.server import create_app
from offload.testing import drain
from tests.integrations.tracedapp import make_app

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _chain_app(tmp_path: Path, provider: TracerProvider) -> offload.Offload:
    app = offload.Offload(f"sqlite:///{tmp_path / 'otel.db'}")
    instrument(app, tracer_provider=provider)
    instrument(app, tracer_provider=provider)  # twice: no second set of spans

    @app.job
    def first(n: int) -> None:
        second.enqueue(n + 1)  # inside the attempt's span: the next job joins the trace

    @app.job(max_attempts=1)
    async def second(n: int) -> None:
        raise ValueError(f"no {n}")

    return app


def _by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


def test_one_trace_from_an_http_request_through_a_chain_of_jobs(
    tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    app = _chain_app(tmp_path, provider)
    tracer = provider.get_tracer("web")
    with tracer.start_as_current_span("GET /signup", kind=trace.SpanKind.SERVER) as request:
        headers: dict[str, str] = {}
        inject(headers)  # what an instrumented HTTP client sends
    with TestClient(create_app(app), base_url="http://127.0.0.1:8750") as client:
        response = client.post("/jobs", json={"kind": "first", "args": {"n": 1}}, headers=headers)
    assert response.status_code == 202, response.text
    drain(app)

    finished = exporter.get_finished_spans()
    trace_id = request.get_span_context().trace_id
    enqueues = _by_name(finished, "offload.enqueue")
    runs = _by_name(finished, "offload.run")
    assert len(enqueues) == 2 and len(runs) == 2
    first_enqueue, second_enqueue = enqueues
    first_run, second_run = sorted(runs, key=lambda s: s.start_time or 0)
    # One trace: request -> enqueue -> run -> enqueue -> run.
    for span in (first_enqueue, first_run, second_enqueue, second_run):
        assert span.context.trace_id == trace_id
    assert first_enqueue.parent.span_id == request.get_span_context().span_id
    assert first_run.parent.span_id == first_enqueue.context.span_id
    assert second_enqueue.parent.span_id == first_run.context.span_id
    assert second_run.parent.span_id == second_enqueue.context.span_id
    # The attributes of an attempt, and its outcome.
    assert first_run.attributes["offload.job.kind"] == "first"
    assert first_run.attributes["offload.queue"] == "default"
    assert first_run.attributes["offload.attempt"] == 1
    assert first_run.attributes["offload.outcome"] == "succeeded"
    assert second_run.attributes["offload.outcome"] == "dead"
    assert second_run.status.status_code == trace.StatusCode.ERROR
    assert any(e.name == "exception" for e in second_run.events)
    # Claim batches: a span each, linked to the claimed jobs' contexts.
    claims = _by_name(finished, "offload.claim")
    assert len(claims) == 2
    assert all(c.links and c.links[0].context.trace_id == trace_id for c in claims)


def test_a_tenant_and_a_span_around_enqueue_in_code(
    tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    app = offload.Offload(f"sqlite:///{tmp_path / 'otel.db'}")
    instrument(app, tracer_provider=provider)

    @app.job(tenant="{account}")
    def bill(account: str) -> None:
        pass

    with provider.get_tracer("web").start_as_current_span("POST /bill") as outer:
        handle = bill.enqueue("acme")
    drain(app)
    (run,) = _by_name(exporter.get_finished_spans(), "offload.run")
    assert run.context.trace_id == outer.get_span_context().trace_id
    assert run.attributes["offload.tenant"] == "acme"
    assert run.attributes["offload.job.id"] == handle.id
    assert "traceparent" in app.store.job_get(handle.id).meta["trace"]


def test_one_trace_through_real_worker_processes(
    tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """The web side in this process (its spans in the in-memory exporter), the jobs in an
    `offload worker` process (its spans written to a file by tracedapp's exporter)."""
    provider, exporter = spans
    url = f"sqlite:///{tmp_path / 'traced.db'}"
    app = make_app(url, provider)
    with provider.get_tracer("web").start_as_current_span("POST /signup") as request:
        headers: dict[str, str] = {}
        inject(headers)
    with TestClient(create_app(app), base_url="http://127.0.0.1:8750") as client:
        response = client.post("/jobs", json={"kind": "first", "args": {"n": 1}}, headers=headers)
    assert response.status_code == 202, response.text
    app.close()
    span_file = tmp_path / "spans.jsonl"
    env = {
        **os.environ,
        "TRACED_URL": url,
        "TRACED_SPANS": str(span_file),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("OFFLOAD_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "offload", "worker", "tracedapp:app", "--burst"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    worker = [json.loads(line) for line in span_file.read_text().splitlines()]
    (web_enqueue,) = _by_name(exporter.get_finished_spans(), "offload.enqueue")
    trace_id = request.get_span_context().trace_id
    runs = {s["attributes"]["offload.job.kind"]: s for s in worker if s["name"] == "offload.run"}
    (job_enqueue,) = [s for s in worker if s["name"] == "offload.enqueue"]
    assert {s["trace_id"] for s in (*runs.values(), job_enqueue)} == {trace_id}
    assert runs["first"]["parent_id"] == web_enqueue.context.span_id
    assert job_enqueue["parent_id"] == runs["first"]["span_id"]
    assert runs["second"]["parent_id"] == job_enqueue["span_id"]
    assert runs["first"]["attributes"]["offload.outcome"] == "succeeded"
    assert runs["second"]["attributes"]["offload.outcome"] == "dead"
    claims = [s for s in worker if s["name"] == "offload.claim"]
    assert claims and all(trace_id in c["links"] for c in claims)
