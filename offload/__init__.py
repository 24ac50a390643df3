"""offload: background jobs for Python, kept safe on SQLite or PostgreSQL.

from offload import Offload
app = Offload("sqlite:///jobs.db")

@app.job(queue="emails", max_attempts=5)
def send_welcome(user_id: int) -> None: ...

send_welcome.enqueue(42)
"""

from offload._app import Offload, Schedule
from offload._backoff import Exponential
from offload._errors import (
    ConfigurationError,
    InvalidArgumentsError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    OffloadError,
    PayloadTooLargeError,
    ResultTimeoutError,
    StoreBusyError,
    StoreError,
    UnknownJobError,
)
from offload._handle import Job
from offload._jobs import JobCall, JobType, PreparedJob

__all__ = [
    "ConfigurationError",
    "Exponential",
    "InvalidArgumentsError",
    "Job",
    "JobCall",
    "JobFailedError",
    "JobNotFoundError",
    "JobTimeoutError",
    "JobType",
    "Offload",
    "OffloadError",
    "PayloadTooLargeError",
    "PreparedJob",
    "ResultTimeoutError",
    "Schedule",
    "StoreBusyError",
    "StoreError",
    "UnknownJobError",
]
__version__ = "0.1.0"
