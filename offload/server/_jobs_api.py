"""REST resources for jobs: create, read, wait for, list, retry, cancel, discard (one, or every
job a filter matches); queues and kinds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import Route

from offload._errors import (
    EncryptionKeyError,
    InvalidArgumentsError,
    PayloadTooLargeError,
    UpgradeError,
)
from offload._states import FINAL_STATES
from offload._time import time_problem
from offload.app._handle import Job
from offload.jobs._encrypt import open_args
from offload.jobs._notify import with_notify
from offload.jobs._payload import check_json, free_args_json
from offload.jobs._secrets import shown_record
from offload.server._bulk import (
    BULK_BODY,
    SEARCH_NAMES,
    match_from_body,
    result_document,
    search_from_query,
)
from offload.server._catalog import kind_rows, paused_kinds, queue_rows
from offload.server._config import valid_name
from offload.server._context import Call, Server, api
from offload.server._http import (
    iso,
    job_resource,
    json_response,
    path_id,
    query_params,
    read_json,
    reads_encrypted,
    undecodable,
)
from offload.server._links import link
from offload.server._problems import Problem
from offload.server._schema import parse_datetime
from offload.server._scope import UNLIMITED, Scope
from offload.store._bulk import BulkResult, JobMatch
from offload.store._contract import JobFilter, JobRecord, NewJob, Store
from offload.store._policy import JobPolicy

OPTION_FIELDS = ("queue", "priority", "delay", "run_at", "max_attempts", "timeout", "meta")


# --- helpers ---------------------------------------------------------------------------
def _expectation(call: Call) -> bool:
    """True for `Expect: 200-ok`; refuses expectations this server does not know."""
    raw = call.request.headers.get("expect")
    if raw is None:
        return False
    wanted = {part.strip().lower() for part in raw.split(",") if part.strip()}
    if not wanted:
        raise Problem(
            "expectation-failed", "the Expect header is empty; send 200-ok or 202-accepted"
        )
    unknown = wanted - {"200-ok", "202-accepted", "100-continue"}
    if unknown:
        raise Problem(
            "expectation-failed",
            f"this server cannot meet the expectation {sorted(unknown)[0]!r}; "
            "it knows 200-ok and 202-accepted",
        )
    if {"200-ok", "202-accepted"} <= wanted:
        raise Problem("expectation-failed", "expect 200-ok or 202-accepted, not both")
    return "200-ok" in wanted


def _wait_seconds(call: Call) -> float:
    limit = call.server.config.max_wait
    for pref in call.request.headers.get("prefer", "").split(","):
        name, _, value = pref.split(";")[0].strip().partition("=")
        if name.lower() == "wait":
            try:
                asked = float(value.strip().strip('"'))
            except ValueError:
                continue  # RFC 7240: a preference the server cannot read is ignored
            if asked >= 0:
                return min(asked, limit)
    return limit


async def _wait_finished(call: Call, job_id: int, seconds: float) -> JobRecord | None:
    """The job once final, or as it is when `seconds` have passed."""
    deadline = time.monotonic() + seconds
    pause = 0.005
    with call.server.result_waits.take():
        while True:
            record = await call.server.run(call.app.store.job_get, job_id)
            if record is None or record.state in FINAL_STATES:
                return record
            left = deadline - time.monotonic()
            if left <= 0 or await call.request.is_disconnected():
                return record
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 1.5, 0.25)


def _result_document(record: JobRecord, readable: bool) -> dict[str, Any]:
    record = shown_record(record, readable)  # an encrypted result as `<encrypted>`, unless
    document = {
        "id": record.id,
        "kind": record.kind,
        "state": record.state,
        "result": record.result,
        "finished_at": iso(record.finished_at),
    }
    if "result" in record.undecodable:  # shown as null, with why and its stored text
        document["undecodable"] = {"result": undecodable(record)["result"]}
    return document


def _result_or_417(record: JobRecord | None, job_id: int, scope: Scope, readable: bool) -> Response:
    location = {
        "Location": link(f"/jobs/{job_id}"),
        "Content-Location": link(f"/jobs/{job_id}/result"),
    }
    if record is None:
        raise Problem("job-not-found", f"job {job_id} does not exist", job_id=job_id)
    if record.state == "completed":
        return json_response(_result_document(scope.shown(record), readable), 200, location)
    if record.state in FINAL_STATES:
        detail = f"job {job_id} ended {record.state}; it has no result"
    else:
        detail = f"job {job_id} is still {record.state} after the wait; poll its resource"
    raise Problem(
        "expectation-failed",
        detail,
        headers={"Location": link(f"/jobs/{job_id}")},
        job_id=job_id,
        state=record.state,
    )


async def _get(call: Call, job_id: int) -> JobRecord:
    """The job, or 404 when there is none or the caller may not know of it (another
    tenant's: offload/server/_scope.py)."""
    record = await call.server.run(call.app.store.job_get, job_id)
    if record is None or not call.scope.allows_job(record):
        raise Problem(
            "job-not-found", f"job {job_id} does not exist (it may have been pruned)", job_id=job_id
        )
    return record


def _opened(job: JobRecord | NewJob) -> Any:
    """A job's arguments to compare: encrypted ones opened (each sealing differs)."""
    return open_args(job.kind, job.args, job.meta)


def _prepare(server: Server, body: dict[str, Any], unique_key: str | None) -> NewJob:
    """The job to store: a declared job type's, checked against its signature, or one of a
    kind run elsewhere, whose arguments are any JSON object (checked alike: plain JSON that
    every engine stores, within the payload limit)."""
    kind: str = body["kind"]
    args: dict[str, Any] = body.get("args", {})
    options: dict[str, Any] = {k: body[k] for k in OPTION_FIELDS if k in body}
    if "run_at" in options:
        at = parse_datetime(options["run_at"])
        assert at is not None  # the schema checked the format
        problem = time_problem(at.timestamp())
        if problem is not None:
            raise Problem("invalid-options", f"run_at {options['run_at']} is refused: {problem}")
        options["at"] = at
        del options["run_at"]
    if unique_key is not None:
        options["unique_key"] = unique_key
    if "queue" in options and not valid_name(options["queue"]):
        raise Problem("invalid-options", f"queue {options['queue']!r} is not a valid name")
    version = body.get("version")
    if kind in server.app.jobs:
        return _declared(server, kind, args, options, version)
    external = server.config.external(kind)
    if external is None and not (server.config.allow_undeclared and valid_name(kind)):
        known = sorted({*server.app.jobs, *(k.name for k in server.config.external_kinds)})
        raise Problem(
            "unknown-kind",
            f"no job kind named {kind!r} here (known: {', '.join(known) or 'none'}); declare it "
            "in the app, or start the server with --external-kind NAME[=QUEUE]",
            kind=kind,
        )
    checked, text = free_args_json(args, kind, server.app.config.max_payload_bytes)
    meta = check_json(options.get("meta", {}), "meta", path="meta")
    at = options.get("at")
    bound = external.max_backlog if external else None
    return NewJob(
        kind=kind,
        queue=options.get("queue", external.queue if external else "default"),
        args=checked,
        priority=options.get("priority", external.priority if external else 0),
        max_attempts=options.get("max_attempts", external.max_attempts if external else 20),
        timeout=options.get("timeout", external.timeout if external else None),
        scheduled_at=at.timestamp() if at is not None else None,
        delay=float(options.get("delay", 0.0)),
        unique_key=unique_key,
        result_ttl=external.result_ttl if external else 86400.0,
        meta=meta,
        policy=None if bound is None else JobPolicy(max_backlog=bound),
        args_json=text,
        version=1 if version is None else int(version),
    )


def _declared(
    server: Server, kind: str, args: dict[str, Any], options: dict[str, Any], version: int | None
) -> NewJob:
    """A job of a declared kind, whose arguments may be of another version than this server's
    code (docs/versions.md): older ones are upgraded, then checked; newer ones are stored at
    their version, checked as plain JSON, for the workers that know it."""
    job_type = server.app.jobs[kind]
    call = server.app.call(kind, **options)
    known = job_type.version
    if version is None or version == known:
        return call.prepare_named(args).new
    if version < known:
        if not isinstance(args, dict):
            raise Problem("invalid-arguments", f"arguments of {kind}() must be an object")
        try:
            upgraded = job_type.versions.upgrade(kind, args, version)
        except UpgradeError as exc:
            raise Problem("invalid-arguments", f"UpgradeError: {exc}") from None
        return call.prepare_named(upgraded).new
    checked, _ = free_args_json(args, kind, server.app.config.max_payload_bytes)
    return replace(call.prepare_named(checked, checked=True).new, version=version)


def _enqueue(
    server: Server, body: dict[str, Any], unique_key: str | None, scope: Scope = UNLIMITED
) -> tuple[int, bool, NewJob]:
    """Check and store one job through the app's one door for every enqueue path, so that
    backlog bounds and blackhole rules apply to declared and external kinds alike."""
    if body["kind"] == "offload.webhook":  # offload's own deliveries: never from a client
        raise Problem("unknown-kind", "offload.webhook is offload's own kind", kind=body["kind"])
    try:
        new = _prepare(server, body, unique_key)
        if "notify" in body:
            new = with_notify(new, body["notify"])
    except EncryptionKeyError as exc:
        raise Problem("encryption-key-missing", str(exc), kind=body["kind"]) from None
    except InvalidArgumentsError as exc:  # name the place at fault in the problem, too
        slug = "payload-too-large" if isinstance(exc, PayloadTooLargeError) else "invalid-arguments"
        raise Problem(slug, str(exc), argument=exc.argument, path=exc.path) from None
    tenant = scope.check_enqueue(new.queue, new.kind, new.tenant)  # 403 outside the scope
    if tenant != new.tenant:
        new = replace(new, tenant=tenant)
    handle = server.app.admit_and_store([new])[0]
    return handle.id, handle.duplicate, new


def _trace_context(body: dict[str, Any], headers: Mapping[str, str]) -> None:
    """Keep the request's W3C trace context (`traceparent`, `tracestate`) in the job's meta
    as `trace`, unless the body names one, so that the job's runs join the caller's trace
    (docs/opentelemetry.md)."""
    parent = headers.get("traceparent")
    meta = body.get("meta")
    if parent is None or (meta is not None and not isinstance(meta, dict)):
        return
    if meta is not None and "trace" in meta:
        return
    trace = {"traceparent": parent}
    if (state := headers.get("tracestate")) is not None:
        trace["tracestate"] = state
    body["meta"] = {**(meta or {}), "trace": trace}


# --- endpoints -------------------------------------------------------------------------
@api("createJob", "enqueue", scoped=True)
async def create_job(call: Call) -> Response:
    wants_result = _expectation(call)
    wait = _wait_seconds(call) if wants_result else 0.0
    key = call.request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= 200 and all("!" <= c <= "~" for c in key)):
        raise Problem("invalid-parameter", "Idempotency-Key must be 1-200 visible ASCII characters")
    body = await read_json(call.request, call.server.max_body, call.server.create_schema)
    unique_key = None if key is None else f"idem:{key}"
    _trace_context(body, call.request.headers)
    job_id, duplicate, new = await call.server.run(
        _enqueue, call.server, body, unique_key, call.scope
    )
    record = await _get(call, job_id)
    if duplicate and (record.kind != new.kind or _opened(record) != _opened(new)):
        raise Problem(
            "idempotency-key-reused",
            f"Idempotency-Key {key!r} was first used for job {job_id} ({record.kind}) with "
            "other arguments; use a new key for a new job",
            job_id=job_id,
        )
    if not duplicate:
        call.server.counters.enqueued.labels(new.queue, new.kind).inc()
    headers = {"Location": link(f"/jobs/{job_id}")}
    if duplicate:
        headers["Idempotent-Replayed"] = "true"
    if wants_result:
        readable = reads_encrypted(call.principal)
        return _result_or_417(
            await _wait_finished(call, job_id, wait), job_id, call.scope, readable
        )
    return json_response(
        job_resource(call.scope.shown(record), readable=reads_encrypted(call.principal)),
        202,
        headers,
    )


@api("listJobs", "read", scoped=True)
async def list_jobs(call: Call) -> Response:
    q = query_params(call.request, call.operation["parameters"])
    limit = q.get("limit", 50)
    flt = JobFilter(
        states=q.get("state") or None,
        queue=q.get("queue"),
        kind=q.get("kind"),
        limit=limit,
        before_id=q.get("before"),
    )
    match = search_from_query(q)  # text or times: a search (offload/server/_bulk.py)
    scope = call.scope
    if match is not None and match.args_contain is not None and not scope.data:
        raise Problem("forbidden", "this token may not read arguments, nor search them")
    if match is None:
        records = await call.server.run(call.app.store.job_list, scope.job_filter(flt))
    else:  # another tenant's jobs are left out of the page (which may then be short)
        found = await call.server.run(call.app.store.job_search, match, limit, flt.before_id)
        records = [r for r in found if scope.allows_job(r)]
    next_link = None
    if len(records) == limit:
        params = [("state", s) for s in q.get("state", [])]
        params += [(k, str(q[k])) for k in ("queue", "kind", "limit", *SEARCH_NAMES) if k in q]
        params.append(("before", str(records[-1].id)))
        next_link = f"/jobs?{urlencode(params)}"
    headers = {"Link": f'<{next_link}>; rel="next"'} if next_link else None
    readable = reads_encrypted(call.principal)
    return json_response(
        {
            "jobs": [job_resource(scope.shown(r), listed=True, readable=readable) for r in records],
            "next": next_link,
        },
        200,
        headers,
    )


@api("getJob", "read", scoped=True)
async def get_job(call: Call) -> Response:
    job_id = path_id(call.request)
    wants_result = _expectation(call)
    if wants_result:
        wait = _wait_seconds(call)
        await _get(call, job_id)
        readable = reads_encrypted(call.principal)
        return _result_or_417(
            await _wait_finished(call, job_id, wait), job_id, call.scope, readable
        )
    record = await _get(call, job_id)
    if record.state == "completed":
        return Response(status_code=303, headers={"Location": link(f"/jobs/{job_id}/result")})
    return json_response(
        job_resource(call.scope.shown(record), readable=reads_encrypted(call.principal))
    )


@api("getJobResult", "read", scoped=True)
async def get_result(call: Call) -> Response:
    job_id = path_id(call.request)
    record = await _get(call, job_id)
    if record.state == "completed":
        return json_response(
            _result_document(call.scope.shown(record), reads_encrypted(call.principal))
        )
    if record.state in FINAL_STATES:
        last = record.errors[-1].get("error") if record.errors else None
        raise Problem(
            "no-result",
            f"job {job_id} ended {record.state}" + (f": {last}" if last else ""),
            job_id=job_id,
            state=record.state,
        )
    raise Problem(
        "result-not-ready",
        f"job {job_id} is {record.state}; its result is not ready",
        job_id=job_id,
        state=record.state,
    )


@api("retryJob", "admin", scoped=True)
async def retry_job(call: Call) -> Response:
    job_id = path_id(call.request)
    await _get(call, job_id)
    if not await call.server.run(call.app.store.job_retry, job_id):
        record = await _get(call, job_id)
        raise Problem(
            "not-retryable",
            f"job {job_id} is {record.state}; it cannot be retried now",
            job_id=job_id,
            state=record.state,
        )
    return json_response(
        job_resource(
            call.scope.shown(await _get(call, job_id)), readable=reads_encrypted(call.principal)
        )
    )


@api("cancelJob", "admin", scoped=True)
async def cancel_job(call: Call) -> Response:
    job_id = path_id(call.request)
    await _get(call, job_id)
    # A waiting job is cancelled at once; a running one is asked to stop (`stop_request`
    # "cancel"): an iteration job ends cancelled at its next yield (docs/long-jobs.md).
    if not await call.server.run(Job(call.app, job_id).cancel):
        record = await _get(call, job_id)
        raise Problem(
            "not-cancellable",
            f"job {job_id} is {record.state}; a finished job cannot be cancelled",
            job_id=job_id,
            state=record.state,
        )
    return json_response(
        job_resource(
            call.scope.shown(await _get(call, job_id)), readable=reads_encrypted(call.principal)
        )
    )


@api("discardJob", "admin", scoped=True)
async def discard_job(call: Call) -> Response:
    job_id = path_id(call.request)
    await _get(call, job_id)
    if not await call.server.run(call.app.store.job_discard, job_id):
        raise Problem("job-not-found", f"job {job_id} does not exist", job_id=job_id)
    return Response(status_code=204)


def _bulk(store: Store, action: str, match: JobMatch, dry_run: bool) -> BulkResult:
    return store.job_bulk(action, match, dry_run=dry_run)


@api("bulkJobs", "admin")
async def bulk_jobs(call: Call) -> Response:
    """Retry, cancel or discard every job a filter matches (or count them: `dry_run`)."""
    body = await read_json(call.request, call.server.max_body, BULK_BODY)
    match = match_from_body(body)
    dry_run = bool(body.get("dry_run", False))
    result = await call.server.run(_bulk, call.app.store, body["action"], match, dry_run)
    return json_response(result_document(result))


@api("listVersions", "read")
async def list_versions(call: Call) -> Response:
    q = query_params(call.request, call.operation["parameters"])
    rows = await call.server.run(call.server.app.job_versions, q.get("kind"))
    return json_response({"versions": rows})


@api("listQueues", "read")
async def list_queues(call: Call) -> Response:
    return json_response({"queues": await call.server.run(queue_rows, call.server)})


@api("listKinds", "read")
async def list_kinds(call: Call) -> Response:
    paused = await call.server.run(paused_kinds, call.server)
    return json_response(
        {
            "kinds": kind_rows(call.server, paused),
            "undeclared_allowed": call.server.config.allow_undeclared,
        }
    )


ROUTES = [
    Route("/jobs", create_job, methods=["POST"]),
    Route("/jobs", list_jobs, methods=["GET"]),
    Route("/jobs/bulk", bulk_jobs, methods=["POST"]),
    Route("/jobs/versions", list_versions, methods=["GET"]),
    Route("/jobs/{job_id:int}", get_job, methods=["GET"]),
    Route("/jobs/{job_id:int}", discard_job, methods=["DELETE"]),
    Route("/jobs/{job_id:int}/result", get_result, methods=["GET"]),
    Route("/jobs/{job_id:int}/retry", retry_job, methods=["POST"]),
    Route("/jobs/{job_id:int}/cancel", cancel_job, methods=["POST"]),
    Route("/queues", list_queues, methods=["GET"]),
    Route("/kinds", list_kinds, methods=["GET"]),
]
