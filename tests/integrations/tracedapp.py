"""An app for the OpenTelemetry test with real worker processes: `make_app` declares a chain of
two jobs on a store and instruments it; imported by `offload worker tracedapp:app` with
$TRACED_URL and $TRACED_SPANS set, its spans go to that file, one JSON object a line."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import offload
from offload.integrations.otel import instrument


class FileExporter(SpanExporter):
    """Appends each finished span to a file as a line of JSON."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a") as out:
            for span in spans:
                parent = span.parent.span_id if span.parent is not None else None
                line: dict[str, Any] = {
                    "name": span.name,
                    "trace_id": span.context.trace_id,
                    "span_id": span.context.span_id,
                    "parent_id": parent,
                    "attributes": dict(span.attributes or {}),
                    "links": [link.context.trace_id for link in span.links],
                }
                out.write(json.dumps(line) + "\n")
        return SpanExportResult.SUCCESS


def make_app(url: str, provider: TracerProvider) -> offload.Offload:
    app = offload.Offload(url)
    instrument(app, tracer_provider=provider)

    @app.job
    def first(n: int) -> None:
        second.enqueue(n + 1)

    @app.job(max_attempts=1)
    async def second(n: int) -> None:
        raise ValueError(f"no {n}")

    return app


if "TRACED_SPANS" in os.environ:
    _provider = TracerProvider()
    _provider.add_span_processor(SimpleSpanProcessor(FileExporter(os.environ["TRACED_SPANS"])))
    app = make_app(os.environ["TRACED_URL"], _provider)
