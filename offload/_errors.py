"""Exceptions a user can meet, each naming the problem and what to do about it."""

from __future__ import annotations


class OffloadError(Exception):
    """Base of every error offload raises on purpose."""


class ConfigurationError(OffloadError):
    """The application or a job type is declared wrongly."""


class EncryptionKeyError(ConfigurationError):
    """A job's data is (to be) encrypted and the key it needs is not configured here
    ($OFFLOAD_KEYS or $OFFLOAD_KEYS_FILE, docs/security.md)."""


class UnknownJobError(OffloadError):
    """A job name that no job type of this application declares."""


class InvalidArgumentsError(OffloadError):
    """Arguments that don't fit the job's signature or can't be stored as JSON. `argument`
    names the argument at fault, `path` the place inside it (`args.items[2].name`) when known.
    """

    def __init__(self, message: str, argument: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.path = path


class InvalidTextError(InvalidArgumentsError):
    """A string in a job's data (arguments, meta or result, keys too) holds a NUL character or
    a lone surrogate, which no engine stores alike: refused before the store is touched, on
    every engine. `path` says where (`args.items[2].name`)."""


class PayloadTooLargeError(InvalidArgumentsError):
    """Arguments whose JSON form is larger than the configured limit."""


class StoreError(OffloadError):
    """The store could not do what was asked."""


class StoreBusyError(StoreError):
    """The store stayed locked by other writers for longer than the busy timeout."""


class StoreFullError(StoreError):
    """The store cannot write: its disk (or the database's size limit) is full. Nothing of the
    refused operation was stored; free space and try again."""


class StoreCorruptError(StoreError):
    """The store's file is damaged (a failed integrity check, a bad header, a truncated file).
    A restart cannot fix it: restore the file from a backup or move it aside."""


class StoreUnavailableError(StoreError):
    """The store does not answer (the database is down or unreachable)."""


class PayloadDecodeError(OffloadError):
    """A stored job's data (arguments, meta, a checkpoint or a result) cannot be decoded, or
    has the wrong shape. The job goes dead with this error; nothing else is held up."""


class OverloadedError(OffloadError):
    """The backlog of a queue or job type is past its configured bound: the job was refused
    and nothing was stored. Try again after `retry_after` seconds, or mark critical work
    `critical=True` so that it is always accepted."""

    def __init__(self, message: str, retry_after: float, scope: str = "", bound: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.scope = scope
        self.bound = bound


class InvalidRuleError(ConfigurationError):
    """A blackhole rule whose `where` expression is not in the rule language."""


class UpgradeError(OffloadError):
    """An upgrader of a job type (`@app.job(upgrade={...})`) failed to turn a job's stored
    arguments of one version into the next: the attempt fails, naming the step."""


class NewerVersionError(OffloadError):
    """A job's arguments are of a newer version than this worker's job type knows (a producer
    was deployed before the workers): the job is put back, no attempt used, until a worker that
    knows the version takes it or its grace period ends."""


class JobNotFoundError(OffloadError):
    """No job with that id (it may have been pruned)."""


class WorkflowNotFoundError(OffloadError):
    """No workflow with that id."""


class JobFailedError(OffloadError):
    """The job ended dead, cancelled or shed instead of producing a result."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class ResultTimeoutError(OffloadError, TimeoutError):
    """The job did not finish within the time `result()` was given."""


class JobTimeoutError(OffloadError, TimeoutError):
    """Raised inside a job that ran past its timeout."""
