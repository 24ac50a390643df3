"""offload: background jobs for Python, kept safe on SQLite or PostgreSQL.

from offload import Offload
app = Offload("sqlite:///jobs.db")

@app.job(queue="emails", max_attempts=5)
def send_welcome(user_id: int) -> None: ...

send_welcome.enqueue(42)
"""

__version__ = "0.1.0"  # the package's one version: pyproject.toml reads it from here

from typing import TYPE_CHECKING

from offload._backoff import Exponential
from offload._errors import (
    ConfigurationError,
    EncryptionKeyError,
    InvalidArgumentsError,
    InvalidRuleError,
    InvalidTextError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    NewerVersionError,
    OffloadError,
    OverloadedError,
    PayloadDecodeError,
    PayloadTooLargeError,
    ResultTimeoutError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreUnavailableError,
    UnknownJobError,
    UpgradeError,
    WorkflowNotFoundError,
)
from offload.app._context import JobContext, current_job
from offload.app._handle import Job
from offload.app._offload import Offload, Schedule
from offload.app._workflows import WorkflowHandle
from offload.dispatch._adaptive import Adaptive, Throttled
from offload.dispatch._limits import Limit
from offload.dispatch._unique import Unique
from offload.events import Batch, Consumer, Event, Topic
from offload.jobs._step import Step
from offload.jobs._type import JobCall, JobType, PreparedJob

__all__ = [
    "Adaptive",
    "Batch",
    "Consumer",
    "Event",
    "ConfigurationError",
    "EncryptionKeyError",
    "Exponential",
    "InvalidArgumentsError",
    "InvalidRuleError",
    "InvalidTextError",
    "Job",
    "JobCall",
    "JobContext",
    "JobFailedError",
    "JobNotFoundError",
    "JobTimeoutError",
    "JobType",
    "Limit",
    "NewerVersionError",
    "Offload",
    "OffloadError",
    "OverloadedError",
    "PayloadDecodeError",
    "PayloadTooLargeError",
    "PreparedJob",
    "ResultTimeoutError",
    "Schedule",
    "Step",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreUnavailableError",
    "Throttled",
    "Topic",
    "Unique",
    "UnknownJobError",
    "UpgradeError",
    "WorkflowHandle",
    "WorkflowNotFoundError",
    "current_job",
]

if TYPE_CHECKING:
    from offload import iteration as iteration
else:

    def __getattr__(name: str) -> object:
        """`offload.iteration` on first use: `import offload` does not load the enumerators."""
        if name == "iteration":
            import offload.iteration  # sets the attribute: this hook is not asked again

            return offload.iteration
        raise AttributeError(f"module 'offload' has no attribute {name!r}")
