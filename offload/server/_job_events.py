"""A job's life pushed to the caller: `GET /jobs/{id}/events`, Server-Sent Events.

One task per server reads every watched job once per `interval` while at least one stream
watches, however many streams watch each job (the way the dashboard's live feed reads the store
once for every browser, _live.py), and hands each stream the records that changed. A stream
reads its job once when it opens (after it is counted, so that no change is missed), and from
each later record it tells what happened since the one before, in order: `started` (an attempt
began), `progress`, `failed` (an attempt failed; the error says why), and one final event,
`completed`, `dead`, `cancelled` or `shed` (or `gone`: the job was discarded), after which the
stream ends. A stream that opens on a finished job sends its final event and ends; one on a
waiting job first sends `waiting`. Each event's data is the JSON document webhooks send
(offload/app/_webhooks.py: `type`, `timestamp`, `data`). Streams last `MAX_STREAM` seconds at
most (EventSource reconnects by itself, and then reads the job afresh).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response
from starlette.routing import Route

from offload._states import FINAL_STATES
from offload.app._webhooks import event_document
from offload.jobs._encrypt import hidden_record
from offload.server._context import Call, Server, api
from offload.server._http import path_id
from offload.server._problems import Problem
from offload.server._scope import UNLIMITED, Scope
from offload.server._spec import JOB_ID_PATH, Spec, problem, standard_errors
from offload.store._contract import JobRecord, Store

log = logging.getLogger("offload.server")
MAX_STREAM = 600.0  # seconds one stream lasts at most
RETRY_MS = 2000
EVENTS = ("waiting", "started", "progress", "failed", "completed", "dead", "cancelled", "shed")
FINAL_EVENTS = (*FINAL_STATES, "gone")


def _read(store: Store, ids: Sequence[int]) -> dict[int, JobRecord | None]:
    return {i: store.job_get(i) for i in ids}


def _mark(record: JobRecord | None) -> tuple[Any, ...] | None:
    """What changes when a stream would tell something new."""
    if record is None:
        return None
    return (
        record.state,
        record.attempt,
        len(record.errors),
        record.progress_done,
        record.progress_total,
        record.finished_at,
    )


class JobWatch:
    """Reads the watched jobs once per `interval` for every stream, and hands each stream the
    records of its job that changed."""

    def __init__(self, server: Server, interval: float = 0.2) -> None:
        self.server = server
        self.interval = interval
        self._streams: dict[int, set[asyncio.Queue[JobRecord | None]]] = {}
        self._marks: dict[int, tuple[Any, ...] | None] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, job_id: int) -> asyncio.Queue[JobRecord | None]:
        queue: asyncio.Queue[JobRecord | None] = asyncio.Queue()
        self._streams.setdefault(job_id, set()).add(queue)
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="offload-job-watch")
        return queue

    def unwatch(self, job_id: int, queue: asyncio.Queue[JobRecord | None]) -> None:
        streams = self._streams.get(job_id)
        if streams is not None:
            streams.discard(queue)
            if not streams:
                del self._streams[job_id]
                self._marks.pop(job_id, None)

    async def _poll(self) -> None:
        try:
            while self._streams:
                ids = list(self._streams)
                try:
                    records = await self.server.run(_read, self.server.app.store, ids)
                except Exception as exc:  # noqa: BLE001 - the store failing: try again
                    log.debug("job events: reading the store failed (%s)", exc)
                else:
                    for job_id, record in records.items():
                        mark = _mark(record)
                        if job_id in self._marks and self._marks[job_id] == mark:
                            continue
                        self._marks[job_id] = mark
                        for queue in self._streams.get(job_id, ()):
                            queue.put_nowait(record)
                await asyncio.sleep(self.interval)
        finally:
            self._task = None


def _fields(record: JobRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": record.id,
        "kind": record.kind,
        "queue": record.queue,
        "state": record.state,
        "attempt": record.attempt,
        "max_attempts": record.max_attempts,
        "inserted_at": record.inserted_at,
        "attempted_at": record.attempted_at,
        "finished_at": record.finished_at,
    }
    if record.state == "completed":  # an encrypted result as <encrypted>
        fields["result"] = hidden_record(record).result
    elif record.state in FINAL_STATES and record.errors:
        fields["error"] = record.errors[-1].get("error")
    if record.progress_done is not None or record.progress_total is not None:
        fields["progress"] = {"done": record.progress_done, "total": record.progress_total}
    return fields


# The state a job was in when an event read from a later reading happened.
_STATE_THEN = {"started": "running", "progress": "running", "failed": "retryable"}


def _event(name: str, record: JobRecord, **extra: Any) -> tuple[str, dict[str, Any]]:
    fields = _fields(record)
    if name not in FINAL_STATES:  # told from this reading, but it happened before the end
        fields.pop("result", None)
        fields.pop("error", None)
        fields["finished_at"] = None
        fields["state"] = _STATE_THEN.get(name, record.state)
    fields.update(extra)
    if name not in FINAL_STATES:
        fields["at"] = extra.get("at") or record.attempted_at
    return name, event_document(f"job.{name}", fields)


def changes(before: JobRecord | None, now: JobRecord | None) -> list[tuple[str, dict[str, Any]]]:
    """What happened to a job between two readings (`before` None: the stream just opened),
    oldest first."""
    out: list[tuple[str, dict[str, Any]]] = []
    if now is None:
        return [("gone", {"type": "job.gone", "timestamp": None, "data": {}})]
    if before is None:
        if now.state in FINAL_STATES:
            return [_event(now.state, now)]
        if now.state == "running":
            out.append(_event("started", now))
            if now.progress_done is not None or now.progress_total is not None:
                out.append(_event("progress", now))
            return out
        return [_event("waiting", now, at=now.inserted_at)]
    errors = now.errors[len(before.errors) :] if len(now.errors) > len(before.errors) else []

    def failed(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        attempt = entry.get("attempt")
        extra: dict[str, Any] = {"error": entry.get("error"), "at": entry.get("at")}
        if isinstance(attempt, int):
            extra["attempt"] = attempt
        if now.state in FINAL_STATES and attempt == now.attempt:
            extra["state"] = now.state  # the last attempt: the job's end follows
        return _event("failed", now, **extra)

    def of(entry: dict[str, Any], attempt: int) -> bool:
        value = entry.get("attempt")
        return isinstance(value, int) and value == attempt

    out += [failed(e) for e in errors if not isinstance(e.get("attempt"), int)]
    out += [
        failed(e)
        for e in errors
        if isinstance(e.get("attempt"), int) and e["attempt"] <= before.attempt
    ]
    for attempt in range(before.attempt + 1, now.attempt + 1):
        out.append(_event("started", now, attempt=attempt))
        out += [failed(e) for e in errors if of(e, attempt)]
    if now.state == "running" and before.state != "running" and now.attempt <= before.attempt:
        out.append(_event("started", now))  # the same attempt again (given back, then taken)
    if now.state == "running" and (now.progress_done, now.progress_total) != (
        before.progress_done,
        before.progress_total,
    ):
        out.append(_event("progress", now))
    if now.state in FINAL_STATES and before.state != now.state:
        out.append(_event(now.state, now))
    return out


async def _stream(
    watch: JobWatch, job_id: int, first: JobRecord, scope: Scope = UNLIMITED
) -> AsyncIterator[ServerSentEvent]:
    queue = watch.watch(job_id)
    try:
        # Counted from here: read again, so that a change between the first read and now is seen.
        record: JobRecord | None = first
        try:
            record = await watch.server.run(watch.server.app.store.job_get, job_id)
        except Exception:  # noqa: BLE001 - the feed reads it again
            record = first
        before: JobRecord | None = None
        async with asyncio.timeout(MAX_STREAM):
            while True:
                shown = None if record is None else scope.shown(record)  # no result for
                for name, document in changes(before, shown):  # a token without data
                    yield ServerSentEvent(
                        data=json.dumps(document, separators=(",", ":")),
                        event=name,
                        retry=RETRY_MS,
                    )
                    if name in FINAL_EVENTS:
                        return
                before = shown
                record = await queue.get()
                if _mark(record) == _mark(before):
                    record = before  # the feed's reading this stream has seen (shown already)
    except TimeoutError:
        return
    finally:
        watch.unwatch(job_id, queue)


@api("getJobEvents", "read", scoped=True)
async def job_events(call: Call) -> Response:
    job_id = path_id(call.request)
    record = await call.server.run(call.app.store.job_get, job_id)
    if record is None or not call.scope.allows_job(record):  # another tenant's: none
        raise Problem(
            "job-not-found", f"job {job_id} does not exist (it may have been pruned)", job_id=job_id
        )
    watch: JobWatch = call.request.app.state.job_watch
    return EventSourceResponse(
        _stream(watch, job_id, record, call.scope), ping=15, headers={"X-Accel-Buffering": "no"}
    )


def operations() -> dict[tuple[str, str], Spec]:
    return {
        ("/jobs/{job_id}/events", "get"): {
            "operationId": "getJobEvents",
            "summary": "The job's life as Server-Sent Events, ending with its final event",
            "description": "Events `waiting` (sent first for a job not started yet), `started`, "
            "`progress`, `failed` (an attempt failed), then one of `completed`, `dead`, "
            "`cancelled`, `shed` or `gone` (discarded), after which the stream ends. A "
            "finished job's stream sends its final event alone. Each event's data is a JSON "
            "document `{type, timestamp, data}`, the same as webhooks send.",
            "tags": ["jobs"],
            "parameters": [JOB_ID_PATH],
            "responses": {
                "200": {
                    "description": "An event stream",
                    "content": {
                        "text/event-stream": {
                            "schema": {
                                "type": "object",
                                "required": ["event", "data"],
                                "properties": {
                                    "event": {"type": "string", "enum": [*EVENTS, "gone"]},
                                    "data": {
                                        "type": "string",
                                        "description": "JSON: {type, timestamp, data}",
                                    },
                                    "retry": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                "404": problem("No such job"),
                **standard_errors(params=True),
            },
        }
    }


ROUTES = [Route("/jobs/{job_id:int}/events", job_events, methods=["GET"])]
