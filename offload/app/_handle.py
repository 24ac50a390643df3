"""The handle a producer gets back from enqueue: look at the job, wait for its result."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from offload._errors import (
    JobFailedError,
    JobNotFoundError,
    PayloadDecodeError,
    ResultTimeoutError,
)
from offload._time import clamped
from offload.jobs._encrypt import open_args, open_result
from offload.store._contract import JobRecord, Undecodable

if TYPE_CHECKING:
    from typing_extensions import TypeVar as TypeVarWithDefault

    from offload.app._offload import Offload

    # The result of the job's function; a plain `Job` (a job enqueued by kind, or looked up by
    # id) reads it as Any.
    R = TypeVarWithDefault("R", default=Any)
else:
    R = TypeVar("R")

_ENDED = ("completed", "dead", "cancelled", "shed")
_FIRST_PAUSE = 0.002  # seconds between looks at a waited-for job, growing 1.5x per look
_LONGEST_PAUSE = 0.1


def _dt(value: float | None) -> datetime | None:
    return None if value is None else clamped(value)


def _number(value: float | None) -> float | None:
    """A stored count as the number it was (10, not 10.0)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a job is: `done` of `total` (None: unknown), the `percent` done when the total
    is known, and when it is expected to finish (`eta`, by its worker's estimate, while it
    runs)."""

    done: float
    total: float | None
    eta: datetime | None

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)

    def as_dict(self) -> dict[str, Any]:
        """For JSON: done, total, percent and eta (ISO 8601, UTC)."""
        return {
            "done": self.done,
            "total": self.total,
            "percent": None if self.percent is None else round(self.percent, 1),
            "eta": None if self.eta is None else self.eta.isoformat(),
        }


def progress_of(record: JobRecord) -> Progress | None:
    """A stored job's progress, or None when it reported none."""
    if record.progress_done is None and record.progress_total is None:
        return None
    done = _number(record.progress_done) or 0
    eta = _dt(record.progress_eta) if record.state == "running" else None
    return Progress(done, _number(record.progress_total), eta)


class Job(Generic[R]):
    """A stored job. `refresh()` reads its current row; `result()` waits for it to finish.

    Generic in the result of its job's function: `send_welcome.enqueue(1).result()` is what
    `send_welcome` returns, to a type checker (docs/typing.md)."""

    def __init__(self, app: Offload, job_id: int, duplicate: bool = False) -> None:
        self.app = app
        self.id = job_id
        self.duplicate = duplicate
        self._record: JobRecord | None = None

    def __repr__(self) -> str:
        state = self._record.state if self._record else "?"
        return f"<Job {self.id} {state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id and other.app is self.app

    def __hash__(self) -> int:
        return hash(self.id)

    # --- reading ----------------------------------------------------------------------
    def refresh(self) -> Job[R]:
        """Read the job's current state from the store."""
        record = self.app.store.job_get(self.id)
        if record is None:
            raise JobNotFoundError(f"job {self.id} does not exist (it may have been pruned)")
        self._record = record
        return self

    async def refresh_async(self) -> Job[R]:
        await self.app.bridge(self.refresh)
        return self

    @property
    def record(self) -> JobRecord:
        if self._record is None:
            self.refresh()
        assert self._record is not None
        return self._record

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def attempt(self) -> int:
        return self.record.attempt

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.record.errors

    @property
    def args(self) -> dict[str, Any]:
        """The job's arguments (an encrypted job's opened with this process's keys)."""
        record = self.record
        opened: dict[str, Any] = open_args(record.kind, record.args, record.meta)
        return opened

    @property
    def version(self) -> int:
        """The version of the job's arguments, stamped at enqueue (docs/versions.md)."""
        return self.record.version

    @property
    def undecodable(self) -> dict[str, Undecodable]:
        """Stored fields that cannot be decoded, by name (why, and the start of the stored
        text); such a field reads as empty. Empty for a sound row (docs/stored-data.md)."""
        return self.record.undecodable

    @property
    def progress(self) -> Progress | None:
        """How far the job is (`progress(done, total)` in its code, or an iteration job's
        yields), as of the last `refresh()`; None before it reported any."""
        return progress_of(self.record)

    @property
    def cursor(self) -> Any:
        """An iteration job's stored cursor (None: it starts, or started, from the beginning)."""
        return self.record.cursor

    @property
    def parent_id(self) -> int | None:
        """The job that was running where this one was enqueued (None: enqueued elsewhere)."""
        return self.record.parent_id

    @property
    def root_id(self) -> int | None:
        """The first job of the chain of jobs that caused this one (None: it is a root)."""
        return self.record.root_id

    @property
    def scheduled_at(self) -> datetime | None:
        return _dt(self.record.scheduled_at)

    @property
    def finished_at(self) -> datetime | None:
        return _dt(self.record.finished_at)

    # --- waiting ----------------------------------------------------------------------
    def result(self, timeout: float | None = None) -> R:
        """Wait for the job to complete and return its result.

        Raises JobFailedError when it ends dead, cancelled or shed, ResultTimeoutError when
        `timeout` seconds pass first (the job goes on), and PayloadDecodeError when it completed
        but its stored result cannot be decoded (the error quotes the stored text).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _FIRST_PAUSE
        while True:
            record = self.refresh().record
            if record.state in _ENDED:
                result: R = self._ended(record)
                return result
            wait = self._pause_or_timeout(pause, deadline, timeout, record)
            time.sleep(wait)
            pause = min(pause * 1.5, _LONGEST_PAUSE)

    async def result_async(self, timeout: float | None = None) -> R:
        """`result()` for async code, holding no thread while it waits: each look at the job
        is one short store read on the app's bridge, and the pauses between them are the event
        loop's, so any number of waiters leave the bridge free for other calls."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _FIRST_PAUSE
        while True:
            record = (await self.refresh_async()).record
            if record.state in _ENDED:
                result: R = self._ended(record)
                return result
            wait = self._pause_or_timeout(pause, deadline, timeout, record)
            await asyncio.sleep(wait)
            pause = min(pause * 1.5, _LONGEST_PAUSE)

    def _ended(self, record: JobRecord) -> Any:
        """The result of a job in a final state, or the error that says why there is none."""
        if record.state == "completed":
            bad = record.undecodable.get("result")
            if bad is not None:
                raise PayloadDecodeError(
                    f"job {self.id} ({record.kind}) completed, but its stored result cannot "
                    f"be decoded: {bad.error.removeprefix('PayloadDecodeError: ')}"
                )
            return open_result(record.kind, record.result, record.meta)
        last = record.errors[-1].get("error", record.state) if record.errors else None
        raise JobFailedError(
            f"job {self.id} ({record.kind}) is {record.state}: {last or record.state}",
            record.state,
        )

    def _pause_or_timeout(
        self, pause: float, deadline: float | None, timeout: float | None, record: JobRecord
    ) -> float:
        """How long to wait before the next look; ResultTimeoutError when the time is up."""
        if deadline is None:
            return pause
        left = deadline - time.monotonic()
        if left <= 0:
            raise ResultTimeoutError(
                f"job {self.id} ({record.kind}) is still {record.state} after {timeout}s"
            )
        return min(pause, left)

    # --- acting -----------------------------------------------------------------------
    def cancel(self) -> bool:
        """Cancel the job; True when it was cancelled, or, for a running job, asked to stop.

        A job that waits (scheduled, available, retryable) is cancelled at once. A running
        job is asked to stop (`stop_requested` becomes true in its code): an iteration job
        stops at its next yield and ends `cancelled`; other code may check `stop_requested`
        and end early, else it runs to its end. False when the job is finished already."""
        store = self.app.store
        for _ in range(3):  # the job may move between the two looks (claimed, put back)
            if store.job_cancel(self.id) or store.job_request_stop(self.id, "cancel"):
                return True
            record = store.job_get(self.id)
            if record is None or record.state in _ENDED:
                return False
        return False

    def retry(self) -> bool:
        """Run a dead, cancelled or finished job again now; True when it was made available."""
        return self.app.store.job_retry(self.id)
