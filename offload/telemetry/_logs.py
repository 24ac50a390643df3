"""Structured logs (docs/logging.md): one JSON object a line, with the running job's id, kind,
attempt, correlation id and trace ids when a line is written during a job's attempt."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from offload.telemetry._hooks import correlation_of, current_run

LOG_FORMAT_ENV = "OFFLOAD_LOG_FORMAT"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"

# Attributes every LogRecord has: the others were passed in `extra=` and are kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: time, level, logger, message, process, the running
    job's fields (`job_id`, `kind`, `attempt`, `correlation_id`, `trace_id`...), whatever was
    passed in `extra=`, and the traceback as `exc_info`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        run = current_run()
        if run is not None:
            line.update(
                job_id=run.id,
                kind=run.kind,
                queue=run.queue,
                attempt=run.attempt,
                correlation_id=run.correlation_id,
            )
            if run.tenant is not None:
                line["tenant"] = run.tenant
            line.update(run.log_fields)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc_info"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


def job_fields(job: Any) -> dict[str, Any]:
    """A job's fields for a log line written outside its run (`extra=` of a logging call)."""
    return {
        "job_id": job.id,
        "kind": job.kind,
        "queue": job.queue,
        "attempt": job.attempt,
        "correlation_id": correlation_of(job.id, job.meta),
    }


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `setup_logging` installs, told apart from the application's own."""


def log_format(given: str | None = None) -> str:
    """The log format: `given`, else $OFFLOAD_LOG_FORMAT, else text."""
    fmt = (given or os.environ.get(LOG_FORMAT_ENV) or "text").strip().lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: one of {', '.join(FORMATS)}")
    return fmt


def setup_logging(level: int, fmt: str | None = None) -> None:
    """Log to stderr at `level` in the chosen format (text or json). Replaces a handler this
    function installed before; like `logging.basicConfig`, leaves logging alone when the
    application installed handlers of its own."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            root.removeHandler(handler)
    if root.handlers:
        return
    handler = _Handler(sys.stderr)
    if log_format(fmt) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
