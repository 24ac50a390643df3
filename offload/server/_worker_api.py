"""The worker protocol over HTTP: fetch (long poll), heartbeat, complete, fail, release.

A worker in any language claims jobs with `POST /worker/fetch`, renews their leases with
`/worker/heartbeat`, and acknowledges each with `/worker/complete` or `/worker/fail`, naming
the lease token the fetch gave it. Policy (ordering, retries, backoff, rescue) stays in the
server and the store; a stale token changes nothing and answers 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import Route

from offload._errors import (
    EncryptionKeyError,
    InvalidArgumentsError,
    PayloadDecodeError,
    PayloadTooLargeError,
)
from offload._text import label_problem, printable, shown
from offload.jobs._encrypt import open_args, seal_result, sealed_names
from offload.jobs._keys import Keyring, keyring
from offload.jobs._payload import check_json, check_size
from offload.outcome import backoff_for, decide, failure, limit_signal
from offload.server._context import Call, Server, api
from offload.server._http import iso, json_response, read_json
from offload.server._problems import Problem
from offload.server._scope import Scope
from offload.server._spec import (
    JOB_ID,
    JSON_VALUE,
    NAME,
    TOKEN,
    Spec,
    json_request,
    ok,
    problem,
    standard_errors,
)
from offload.store._contract import (
    ClaimedJob,
    ClaimParams,
    Completion,
    Lease,
    WorkerInfo,
)
from offload.store._dispatch import LimitReport

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.jobs._type import JobType

log = logging.getLogger("offload.server")

# A worker's host name: one line of text (no control character; `_checked_host` also refuses a
# lone surrogate, which a schema cannot say).
HOST: Spec = {"type": "string", "maxLength": 200, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}
WORKER_ID: Spec = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_.:@/-]{1,200}$",
    "description": "The worker's id, unique per process (e.g. host:pid:random).",
}
LEASE: Spec = {
    "type": "object",
    "required": ["id", "token"],
    "additionalProperties": False,
    "properties": {"id": JOB_ID, "token": TOKEN},
}
LEASE_SECONDS: Spec = {
    "type": "number",
    "minimum": 1,
    "maximum": 3600,
    "description": "How long a claim lasts without a heartbeat (default: the app's).",
}
MAX_ERROR = 10_000
MAX_TRACEBACK = 64_000
MAX_DELAY = 30 * 86400  # seconds: the longest retry delay a fail call may name


def fetch_schema(server: Server) -> Spec:
    return {
        "type": "object",
        "required": ["worker", "queues"],
        "additionalProperties": False,
        "properties": {
            "worker": WORKER_ID,
            "queues": {"type": "array", "items": NAME, "minItems": 1, "maxItems": 50},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "wait": {"type": "number", "minimum": 0, "maximum": server.config.max_wait},
            "lease_seconds": LEASE_SECONDS,
            "running": {"type": "integer", "minimum": 0, "maximum": 100_000},
            "host": HOST,
            "pid": {"type": "integer", "minimum": 0, "maximum": 2**31},
        },
    }


HEARTBEAT: Spec = {
    "type": "object",
    "required": ["leases"],
    "additionalProperties": False,
    "properties": {
        "worker": WORKER_ID,
        "leases": {"type": "array", "items": LEASE, "maxItems": 1000},
        "queues": {"type": "array", "items": NAME, "maxItems": 50},
        "lease_seconds": LEASE_SECONDS,
        "running": {"type": "integer", "minimum": 0, "maximum": 100_000},
        "host": HOST,
        "pid": {"type": "integer", "minimum": 0, "maximum": 2**31},
    },
}
COMPLETE: Spec = {
    "type": "object",
    "required": ["id", "token"],
    "additionalProperties": False,
    "properties": {
        "id": JOB_ID,
        "token": TOKEN,
        "result": {**JSON_VALUE, "description": "The job's result (any JSON value)."},
    },
}
FAIL: Spec = {
    "type": "object",
    "required": ["id", "token", "error"],
    "additionalProperties": False,
    "properties": {
        "id": JOB_ID,
        "token": TOKEN,
        "error": {"type": "string", "minLength": 1, "maxLength": MAX_ERROR},
        "traceback": {"type": "string", "maxLength": MAX_TRACEBACK},
        "retryable": {
            "type": "boolean",
            "description": "false makes the job dead now; true (default) retries it while "
            "attempts remain.",
        },
        "retry_in": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_DELAY,
            "description": "Seconds before the next attempt; default: the kind's backoff.",
        },
        "throttled": {
            "type": "boolean",
            "description": "true: the service the job calls pushed back (HTTP 429/503, a "
            "quota), as `offload.Throttled` in Python: the job's limit key is told (its "
            "adaptive limit is cut) and the job is retried without using up an attempt.",
        },
        "retry_after": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_DELAY,
            "description": "With `throttled: true`: seconds the service asked to wait (its "
            "Retry-After); default: the kind's backoff.",
        },
    },
    "allOf": [
        {
            "not": {"required": ["retry_in", "retry_after"]},
            "description": "must not hold both retry_in and retry_after: send one delay",
        },
        {
            "not": {
                "required": ["throttled", "retryable"],
                "properties": {"throttled": {"enum": [True]}, "retryable": {"enum": [False]}},
            },
            "description": "must not say both throttled: true and retryable: false (a "
            "throttled attempt is always retried)",
        },
        {
            "not": {
                "required": ["retry_after"],
                "not": {"required": ["throttled"], "properties": {"throttled": {"enum": [True]}}},
            },
            "description": "holds retry_after without throttled: true (retry_after is a "
            "throttle's delay; a plain failure's delay is retry_in)",
        },
    ],
}
RELEASE: Spec = {
    "type": "object",
    "required": ["leases"],
    "additionalProperties": False,
    "properties": {
        "worker": WORKER_ID,
        "leases": {"type": "array", "items": LEASE, "maxItems": 1000},
        "goodbye": {
            "type": "boolean",
            "description": "true also forgets the worker (it is shutting down).",
        },
    },
}


def operations(server: Server) -> dict[tuple[str, str], Spec]:
    stale = {"409": problem("The lease token is stale; nothing changed")}
    return {
        ("/worker/fetch", "post"): {
            "operationId": "workerFetch",
            "summary": "Claim up to `limit` jobs, waiting up to `wait` seconds for some",
            "tags": ["worker"],
            "requestBody": json_request(fetch_schema(server)),
            "responses": {
                "200": ok("Claimed jobs (possibly none)", "Fetched"),
                **standard_errors(body=True),
            },
        },
        ("/worker/heartbeat", "post"): {
            "operationId": "workerHeartbeat",
            "summary": "Extend leases; lists the jobs whose lease was lost",
            "tags": ["worker"],
            "requestBody": json_request(HEARTBEAT),
            "responses": {
                "200": ok("Leases extended except those lost", "HeartbeatResult"),
                **standard_errors(body=True),
            },
        },
        ("/worker/complete", "post"): {
            "operationId": "workerComplete",
            "summary": "Complete a job with its result",
            "tags": ["worker"],
            "requestBody": json_request(COMPLETE),
            "responses": {
                "200": ok("Completed", "Acknowledged"),
                **stale,
                **standard_errors(body=True),
            },
        },
        ("/worker/fail", "post"): {
            "operationId": "workerFail",
            "summary": "Record a failed attempt: retry later or dead",
            "tags": ["worker"],
            "requestBody": json_request(FAIL),
            "responses": {
                "200": ok("Recorded", "Acknowledged"),
                **stale,
                **standard_errors(body=True),
            },
        },
        ("/worker/release", "post"): {
            "operationId": "workerRelease",
            "summary": "Put claimed jobs back without counting an attempt (shutdown)",
            "tags": ["worker"],
            "requestBody": json_request(RELEASE),
            "responses": {
                "200": ok("Jobs put back", "Released"),
                **standard_errors(body=True),
            },
        },
    }


def _beat(call: Call, body: dict[str, Any]) -> None:
    """Register an HTTP worker, or refresh its record, so that it counts as alive; at most a
    few writes per heartbeat interval per worker, whatever its fetch rate."""
    worker = body.get("worker")
    if worker is None:
        return
    client = call.request.client
    queues = list(dict.fromkeys(body.get("queues", [])))
    running = body.get("running", len(body.get("leases", [])))
    started = call.server.worker_seen(worker)
    if started is None:
        return
    info = WorkerInfo(
        id=worker,
        host=body.get("host") or (client.host if client else socket.gethostname()),
        pid=body.get("pid", 0),
        queues=queues,
        started_at=started,
        seen_at=0.0,
        running=running,
        owner=None if call.principal.via == "local" else call.principal.name,
    )
    call.app.store.worker_beat(info)
    call.app.tally.flush(call.app.store)  # HTTP workers' failed attempts, with their beat


def _checked_host(body: dict[str, Any]) -> dict[str, Any]:
    """The body, refused (422) when its `host` is not a one-line label: a NUL (which
    PostgreSQL cannot store), another control character, or a lone surrogate."""
    host = body.get("host")
    problem = None if host is None else label_problem(host)
    if host is not None and problem is not None:
        raise Problem("invalid-request", f"body.host {shown(host)} {problem}; send the host name")
    return body


def _token(text: str) -> int:
    """A lease token from its decimal string. One past what the store keeps (a signed 64-bit
    integer) matches no lease: it is stale like any other token no claim gave (-1)."""
    value = int(text)
    return value if value < 2**63 else -1


def _claimed(job: ClaimedJob, expires: float) -> dict[str, Any]:
    return {
        "id": job.id,
        "token": str(job.lease_token),
        "kind": job.kind,
        "queue": job.queue,
        "args": job.args,
        "meta": job.meta,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "delivery": job.delivery,
        "timeout": job.timeout,
        "version": job.version,
        "lease_expires_at": iso(expires),
    }


def _claim(server: Server, params: ClaimParams, scope: Scope) -> list[ClaimedJob]:
    """Claim like a Python worker does: expired jobs and those matching a blackhole rule are
    shed here and never handed to the HTTP worker. A token limited to some kinds claims
    without the others the server knows of; a job of a kind it learns of only now is put
    back at once (no attempt counted) and its kind is skipped from then on."""
    skip = scope.skip_kinds(server.known_kinds())
    if skip:
        params = dataclasses.replace(params, skip_kinds=sorted({*params.skip_kinds, *skip}))
    jobs = server.gate.apply(server.app.store.job_claim(params))
    if scope.kinds is None:
        return jobs
    outside = [j for j in jobs if j.kind not in scope.kinds]
    if outside:
        server.kinds_seen.update(j.kind for j in outside)
        server.app.store.job_release_many([Lease(j.id, j.lease_token) for j in outside])
    return [j for j in jobs if j.kind in scope.kinds]


@api("workerFetch", "worker")
async def fetch(call: Call) -> Response:
    server = call.server
    body = _checked_host(await read_json(call.request, server.max_body, fetch_schema(server)))
    queues: list[str] = list(dict.fromkeys(body["queues"]))
    call.scope.check_fetch(queues)  # 403 for a queue outside the token's scope
    await server.run(server.own_worker, body["worker"], call.principal)
    lease = float(body.get("lease_seconds", call.app.config.lease_seconds))
    params = ClaimParams(queues, body.get("limit", 1), body["worker"], lease)
    await server.run(_beat, call, body)
    wait = float(body.get("wait", 0.0))
    deadline = time.monotonic() + wait
    jobs: list[ClaimedJob] = []
    with server.worker_polls.take() if wait > 0 else contextlib.nullcontext():
        while True:
            event = server.waker.arm() if wait > 0 else None
            try:
                jobs = await server.run(_claim, server, params, call.scope)
                left = deadline - time.monotonic()
                if jobs or left <= 0 or event is None:
                    break
                if await call.request.is_disconnected():
                    break
                try:
                    await asyncio.wait_for(event.wait(), timeout=min(left, 1.0))
                except TimeoutError:
                    pass
            finally:
                if event is not None:
                    server.waker.disarm(event)
    expires = time.time() + lease
    for job in jobs:
        server.counters.fetched.labels(job.queue, job.kind).inc()
    ring = keyring()  # this server's keys open encrypted jobs' arguments for remote workers
    jobs = [_opened(j, ring) for j in jobs]
    return json_response({"jobs": [_claimed(j, expires) for j in jobs], "lease_seconds": lease})


def _opened(job: ClaimedJob, ring: Keyring | None) -> ClaimedJob:
    """A claimed job with its encrypted arguments opened when this server holds their key; as
    stored otherwise (`<encrypted>` data for a worker that holds the key itself)."""
    if ring is None or sealed_names(job.meta) is None:
        return job
    try:
        return replace(job, args=open_args(job.kind, job.args, job.meta, ring))
    except (EncryptionKeyError, PayloadDecodeError):
        return job


@api("workerHeartbeat", "worker")
async def heartbeat(call: Call) -> Response:
    body = _checked_host(await read_json(call.request, call.server.max_body, HEARTBEAT))
    if body.get("worker") is not None:
        await call.server.run(call.server.own_worker, body["worker"], call.principal)
    leases = [Lease(item["id"], _token(item["token"])) for item in body["leases"]]
    lease = float(body.get("lease_seconds", call.app.config.lease_seconds))
    lost = await call.server.run(call.app.store.job_heartbeat, leases, lease)
    await call.server.run(_beat, call, body)
    return json_response({"lost": lost})


def _sealed_result(call: Call, job_id: int, result: Any) -> Any:
    record = call.app.store.job_get(job_id)
    return result if record is None else seal_result(record.kind, result, record.meta)


@api("workerComplete", "worker")
async def complete(call: Call) -> Response:
    body = await read_json(call.request, call.server.max_body, COMPLETE)
    result = body.get("result")
    try:
        result = check_json(result, "the result", path="result")
        check_size({"result": result}, "result", call.app.config.max_payload_bytes)
    except PayloadTooLargeError:
        raise
    except InvalidArgumentsError as exc:  # InvalidTextError too: the same refusal as a
        # Python worker's (whose attempt then fails), named with its path
        raise Problem("invalid-request", str(exc), path=exc.path) from None
    if keyring() is not None:  # an encrypted job's result is encrypted here, before it is stored
        result = await call.server.run(_sealed_result, call, body["id"], result)
    done = Completion(body["id"], _token(body["token"]), result)
    outcome = await call.server.run(call.app.store.job_complete_many, [done])
    if not outcome.applied:
        call.server.counters.stale.inc()
        raise _stale(body["id"])
    call.server.counters.completed.inc()
    if _adaptive_kinds(call.app):  # successes raise adaptive limits (offload/outcome.py)
        record = await call.server.run(call.app.store.job_get, body["id"])
        if record is not None and record.limit_key is not None:
            job_type = call.app.jobs.get(record.kind)
            await _report_limit(call, record.limit_key, job_type, ok=True, throttled=False)
    return json_response({"id": body["id"], "state": "completed", "retry_in": None})


@api("workerFail", "worker")
async def fail(call: Call) -> Response:
    body = await read_json(call.request, call.server.max_body, FAIL)
    job_id, token = body["id"], _token(body["token"])
    record = await call.server.run(call.app.store.job_get, job_id)
    if record is None or record.state != "running" or record.lease_token != token:
        # fenced off before writing; counted where the store counts stale acknowledgements
        await call.server.run(call.app.store.counter_add, "stale_acks", 1)
        call.server.counters.stale.inc()
        raise _stale(job_id)
    # The outcome policy decides, as for a Python worker's run (offload/outcome.py).
    throttled = bool(body.get("throttled", False))
    delay = body.get("retry_after" if "retry_after" in body else "retry_in")
    job_type = call.app.jobs.get(record.kind)
    verdict = decide(
        ok=False,
        attempt=record.attempt,
        max_attempts=record.max_attempts,
        backoff=backoff_for(job_type.options_.backoff if job_type else None),
        throttled=throttled,
        retry_in=None if delay is None else float(delay),
        retryable=body.get("retryable", True),
    )
    # Diagnostics: a NUL or a lone surrogate is replaced (U+FFFD) on every engine, not refused.
    error, trace = printable(body["error"]), printable(body.get("traceback", ""))
    recorded = failure(job_id, token, error, trace, verdict)
    outcome = await call.server.run(call.app.store.job_fail_many, [recorded])
    if not outcome.applied:
        call.server.counters.stale.inc()
        raise _stale(job_id)
    await _report_limit(call, record.limit_key, job_type, ok=False, throttled=throttled)
    call.app.tally.failed(record.queue, record.kind, retried=verdict.retried)
    call.server.counters.failed.labels(
        record.queue,
        record.kind,
        "throttled" if verdict.throttled else "retry" if verdict.retried else "dead",
    ).inc()
    return json_response({"id": job_id, "state": verdict.state, "retry_in": verdict.retry_in})


async def _report_limit(
    call: Call, key: str | None, job_type: JobType | None, *, ok: bool, throttled: bool
) -> None:
    """Tell the job's limit key what its run said, as a Python worker does in its batch of
    acknowledgements: a throttle always, a success of an adaptive key (an HTTP worker's run
    is not timed, so its latency bound does not apply)."""
    if key is None:
        return
    limit = job_type.options_.limit if job_type is not None else None
    adaptive = limit.adaptive if limit is not None else None
    signal = limit_signal(ok=ok, throttled=throttled, duration=None, adaptive=adaptive)
    if signal is None or not (signal.ok or signal.throttled or signal.slow):  # nothing to tell
        return
    report = LimitReport(key, signal.ok, signal.throttled, signal.slow)
    try:  # the outcome is recorded already: a failed report must not turn it into an error
        await call.server.run(call.app.store.limit_report, [report])
    except Exception as exc:
        log.warning("reporting job outcomes to limit %r failed (%s); skipped", key, exc)


@api("workerRelease", "worker")
async def release(call: Call) -> Response:
    body = await read_json(call.request, call.server.max_body, RELEASE)
    if body.get("worker") is not None:
        await call.server.run(call.server.own_worker, body["worker"], call.principal)
    leases = [Lease(item["id"], _token(item["token"])) for item in body["leases"]]
    released = await call.server.run(call.app.store.job_release_many, leases)
    if body.get("goodbye") and body.get("worker"):
        await call.server.run(call.app.store.worker_remove, body["worker"])
        call.server.forget_worker(body["worker"])
    return json_response({"released": released})


def _adaptive_kinds(app: Offload) -> bool:
    """Whether any job type of the app has an adaptive limit (only their successes are
    reported, so a completion reads its job only then)."""
    return any(
        t.options_.limit is not None and t.options_.limit.adaptive is not None
        for t in app.jobs.values()
    )


def _stale(job_id: int) -> Problem:
    return Problem(
        "stale-lease",
        f"job {job_id} is not leased with this token any more (rescued, claimed again, or "
        "already acknowledged); its outcome was not recorded",
        job_id=job_id,
    )


ROUTES = [
    Route("/worker/fetch", fetch, methods=["POST"]),
    Route("/worker/heartbeat", heartbeat, methods=["POST"]),
    Route("/worker/complete", complete, methods=["POST"]),
    Route("/worker/fail", fail, methods=["POST"]),
    Route("/worker/release", release, methods=["POST"]),
]
