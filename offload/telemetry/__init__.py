"""Telemetry: hooks and middleware around enqueue and job runs, lifecycle events, and
structured logs. The integrations (OpenTelemetry, Sentry) are built on these."""

from offload.telemetry._hooks import (
    EVENTS,
    EnqueuedJob,
    Hooks,
    JobEvent,
    JobRun,
    correlation_of,
    current_run,
    run_of,
)
from offload.telemetry._logs import (
    LOG_FORMAT_ENV,
    JsonFormatter,
    job_fields,
    log_format,
    setup_logging,
)

__all__ = [
    "EVENTS",
    "LOG_FORMAT_ENV",
    "EnqueuedJob",
    "Hooks",
    "JobEvent",
    "JobRun",
    "JsonFormatter",
    "correlation_of",
    "current_run",
    "job_fields",
    "log_format",
    "run_of",
    "setup_logging",
]
