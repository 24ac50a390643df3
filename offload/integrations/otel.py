"""OpenTelemetry tracing (`pip install 'offload[otel]'`, docs/opentelemetry.md), built on the
app's hooks: each enqueue runs in a span whose context is stored with its jobs (meta `trace`,
W3C trace context; the HTTP API takes it from the request's `traceparent` header), each attempt
runs in a span that is a child of it, and each claim batch is a span linked to its jobs'.

The OpenTelemetry packages are imported here only, when `instrument` is called.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

from offload import EnqueuedJob, JobEvent, JobRun, Offload

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

TRACE_KEY = "trace"  # the job's meta key holding its W3C trace context
SYSTEM = "offload"


def instrument(app: Offload, tracer_provider: TracerProvider | None = None) -> None:
    """Trace `app`'s enqueues, attempts and claim batches with OpenTelemetry (the global tracer
    provider unless one is given). Call it once, where the app is declared, so that producers
    and workers alike trace; calling it again changes nothing."""
    if getattr(app, "_offload_otel", False):
        return
    from opentelemetry import trace

    from offload import __version__

    tracer = trace.get_tracer("offload", __version__, tracer_provider=tracer_provider)
    app.enqueue_middleware(_enqueue_middleware(tracer))
    app.middleware(_run_middleware(tracer))
    app.on("claimed")(_claim_span(tracer))
    app._offload_otel = True  # type: ignore[attr-defined]


def _carrier(meta: Mapping[str, Any]) -> dict[str, str]:
    value = meta.get(TRACE_KEY)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _enqueue_middleware(tracer: Tracer) -> Any:
    from opentelemetry import context, propagate, trace

    def offload_otel_enqueue(jobs: list[EnqueuedJob]) -> Generator[None, None, None]:
        parent = context.get_current()
        if not trace.get_current_span().get_span_context().is_valid:
            # Outside any span (the HTTP API's thread): the context the request carried.
            given = next((c for c in map(_carrier, (j.meta for j in jobs)) if c), None)
            if given:
                parent = propagate.extract(given)
        kinds = sorted({j.kind for j in jobs})
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.batch.message_count": len(jobs),
            "offload.job.kind": kinds[0] if len(kinds) == 1 else kinds,
            "offload.queue": sorted({j.queue for j in jobs}),
        }
        with tracer.start_as_current_span(
            "offload.enqueue", context=parent, kind=trace.SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            for job in jobs:
                job.meta[TRACE_KEY] = dict(carrier)
            yield
            ids = [j.id for j in jobs if j.id is not None]
            if ids:
                span.set_attribute("offload.job.id", ids[0] if len(ids) == 1 else ids)

    return offload_otel_enqueue


def _run_middleware(tracer: Tracer) -> Any:
    from opentelemetry import context, propagate, trace
    from opentelemetry.trace import Status, StatusCode

    def offload_otel_run(run: JobRun) -> Generator[None, None, None]:
        parent = propagate.extract(_carrier(run.meta))
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.destination.name": run.queue,
            "offload.job.id": run.id,
            "offload.job.kind": run.kind,
            "offload.queue": run.queue,
            "offload.attempt": run.attempt,
            "offload.correlation_id": str(run.correlation_id),
        }
        if run.tenant is not None:
            attributes["offload.tenant"] = run.tenant
        span = tracer.start_span(
            "offload.run", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
        )
        token = context.attach(trace.set_span_in_context(span))
        ids = span.get_span_context()
        run.log_fields["trace_id"] = format(ids.trace_id, "032x")
        run.log_fields["span_id"] = format(ids.span_id, "016x")
        try:
            yield
        finally:
            span.set_attribute("offload.outcome", run.outcome or "interrupted")
            if run.exception is not None:
                span.record_exception(run.exception)
            if run.error:
                span.set_status(Status(StatusCode.ERROR, run.error))
            span.end()
            context.detach(token)

    return offload_otel_run


def _claim_span(tracer: Tracer) -> Any:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link

    def offload_otel_claim(event: JobEvent) -> None:
        links = []
        for job in event.jobs:
            ctx = trace.get_current_span(propagate.extract(_carrier(job.meta))).get_span_context()
            if ctx.is_valid:
                links.append(Link(ctx, {"offload.job.id": job.id}))
        span = tracer.start_span(
            "offload.claim",
            context=trace.set_span_in_context(trace.INVALID_SPAN),  # a root: not any job's
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "receive",
                "messaging.batch.message_count": event.count,
                "offload.queue": sorted({j.queue for j in event.jobs}),
            },
        )
        span.end()

    return offload_otel_claim
