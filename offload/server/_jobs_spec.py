"""The OpenAPI side of the job resources: request schemas (with each kind's arguments, from
its signature) and the operations' documentation."""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import TYPE_CHECKING, Any

from offload._states import STATES
from offload.jobs._notify import MAX_URL_LENGTH, URL_PATTERN
from offload.server._bulk import BULK_BODY, BULK_RESULT, search_params
from offload.server._spec import (
    ACCEPTED_TIME,
    JOB_ID,
    JOB_ID_PATH,
    JSON_OBJECT,
    JSON_VALUE,
    LOCATION,
    NAME,
    Spec,
    header,
    json_request,
    ok,
    problem,
    query,
    standard_errors,
)

if TYPE_CHECKING:
    from offload.jobs._type import JobType
    from offload.server._context import Server

MAX_DELAY = 366 * 86400.0
MAX_VERSION = 2**31 - 1  # the store's version column is a 32-bit integer
NOTIFY_URL: Spec = {
    "type": "string",
    "maxLength": MAX_URL_LENGTH,
    "pattern": URL_PATTERN,
    "description": "An http(s) URL told of the job's end by a signed webhook "
    "(docs/webhooks.md); it overrides the kind's own.",
}


def _body(kind: Spec, args: Spec, args_required: bool, meta: Spec | None = None) -> Spec:
    return {
        "type": "object",
        "required": ["kind", "args"] if args_required else ["kind"],
        "additionalProperties": False,
        "not": {"required": ["delay", "run_at"]},
        "properties": {
            "kind": kind,
            "args": args,
            "queue": {**NAME, "description": "Overrides the kind's queue."},
            "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
            "delay": {"type": "number", "minimum": 0, "maximum": MAX_DELAY},
            "run_at": ACCEPTED_TIME,
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
            "version": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_VERSION,
                "description": "The version of `args` (docs/versions.md). Of a declared kind: "
                "older arguments are upgraded here by the kind's upgraders and stored at the "
                "version this server knows; newer ones are stored as they are, at their version, "
                "checked as plain JSON. Default: the version this server declares for the kind, "
                "else 1.",
            },
            "timeout": {
                "type": "number",
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": 7 * 86400,
            },
            "meta": {
                **(meta or {"type": "object"}),
                "description": "Tags kept with the job (JSON).",
            },
            "notify": NOTIFY_URL,
        },
    }


def hint_schema(hint: Any) -> Spec:
    """The JSON Schema of a parameter annotation offload checks at enqueue (any JSON value
    when it does not check it)."""
    if hint is None or hint is Any or hint is object:
        return dict(JSON_VALUE)
    simple: dict[Any, Spec] = {
        int: {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        float: {"type": "number"},
        str: {"type": "string"},
        bool: {"type": "boolean"},
        list: {"type": "array", "items": JSON_VALUE},
        dict: JSON_OBJECT,
    }
    if hint in simple:
        return dict(simple[hint])
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = (
            hint_schema(options[0])
            if len(options) == 1
            else {"anyOf": [hint_schema(a) for a in options]}
        )
        if len(options) < len(args):
            return {**inner, "nullable": True} if "type" in inner else dict(JSON_VALUE)
        return inner
    if origin is list and len(args) == 1:
        return {"type": "array", "items": hint_schema(args[0])}
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence):
        return {"type": "array", "items": JSON_VALUE}
    if origin in (dict, collections.abc.Mapping):
        values = hint_schema(args[1]) if len(args) == 2 else JSON_VALUE
        return {"type": "object", "additionalProperties": values}
    if origin is typing.Literal:
        return {"enum": list(args)}
    return dict(JSON_VALUE)


def arguments_schema(job_type: JobType) -> Spec:
    """The `args` object a declared job type takes, from its signature and annotations."""
    sig = job_type.signature
    props: dict[str, Spec] = {}
    extra: bool | Spec = False
    for p in sig.sig.parameters.values():
        hint = sig.hints.get(p.name)
        if p.kind is p.VAR_KEYWORD:
            extra = hint_schema(hint) or True
        elif p.kind is p.VAR_POSITIONAL:
            props[p.name] = {"type": "array", "items": hint_schema(hint)}
        else:
            props[p.name] = hint_schema(hint)
    schema: Spec = {"type": "object", "properties": props, "additionalProperties": extra}
    if sig.required:
        schema["required"] = list(sig.required)
    return schema


def create_schema(server: Server, published: bool = True) -> Spec:
    """The body of POST /jobs.

    The published form has one branch per kind, with the arguments its signature takes. The
    server itself checks the plain form first, so that an unknown kind and bad arguments get
    problem types of their own (`unknown-kind`, `invalid-arguments`).
    """
    plain = _body({**NAME, "description": "The job type's name."}, {"type": "object"}, False)
    if not published:  # the server checks a notify URL itself, to say what is wrong with it
        plain["properties"]["notify"] = {"type": "string"}
    external = [k for k in server.config.external_kinds if k.name not in server.app.jobs]
    if not published or server.config.allow_undeclared or not (server.app.jobs or external):
        return plain
    branches = [
        _body(
            {"type": "string", "enum": [name]},
            arguments_schema(jt),
            bool(jt.signature.required),
            JSON_OBJECT,
        )
        for name, jt in sorted(server.app.jobs.items())
    ]
    branches += [
        _body(
            {"type": "string", "enum": [k.name]},
            {**JSON_OBJECT, "description": "Any JSON object: workers elsewhere run it."},
            False,
            JSON_OBJECT,
        )
        for k in sorted(external, key=lambda k: k.name)
    ]
    return {"oneOf": branches}


EXPECT = header(
    "Expect",
    {"type": "string", "enum": ["200-ok", "202-accepted", "100-continue"]},
    "`200-ok`: wait for the job to complete (bounded) and answer 200 with its result, or 417. "
    "`202-accepted` (the default) answers at once.",
)
PREFER = header(
    "Prefer",
    {"type": "string"},
    "`wait=N`: how many seconds `Expect: 200-ok` may wait (capped by the server); other "
    "preferences, and a wait that is not a number, are ignored (RFC 7240).",
)
IDEMPOTENCY = header(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
    "A client-chosen key: a retried POST with the same key returns the job the first made.",
)


def operations(server: Server) -> dict[tuple[str, str], Spec]:
    wait_errors = {
        "417": problem("Expect could not be honoured; the job exists (Location)", LOCATION),
    }
    job_state_params = [
        query(
            "state",
            {"type": "array", "items": {"type": "string", "enum": list(STATES)}, "maxItems": 8},
            "Only jobs in these states (repeat the parameter for several).",
        ),
        query("queue", NAME, "Only jobs of this queue."),
        query("kind", NAME, "Only jobs of this kind."),
        query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Page size (50)."),
        query("before", JOB_ID, "Only jobs with a smaller id (the `next` link sets it)."),
        *search_params(),
    ]
    return {
        ("/jobs", "post"): {
            "operationId": "createJob",
            "summary": "Enqueue a job",
            "tags": ["jobs"],
            "parameters": [IDEMPOTENCY, EXPECT, PREFER],
            "requestBody": json_request(create_schema(server)),
            "responses": {
                "202": ok("Accepted and stored; follow Location", "Job", LOCATION),
                "200": ok("With Expect: 200-ok, the job completed: its result", "Result", LOCATION),
                **wait_errors,
                **standard_errors(body=True, params=True),
            },
        },
        ("/jobs", "get"): {
            "operationId": "listJobs",
            "summary": "List jobs, newest first",
            "description": "Each job as a summary: its `errors` hold its latest entry alone, "
            "without its traceback; `GET /jobs/{id}` has every entry kept.",
            "tags": ["jobs"],
            "parameters": job_state_params,
            "responses": {
                "200": ok(
                    "A page of jobs",
                    "JobList",
                    {"Link": {"description": "rel=next", "schema": {"type": "string"}}},
                ),
                **standard_errors(params=True),
            },
        },
        ("/jobs/{job_id}", "get"): {
            "operationId": "getJob",
            "summary": "A job: its state, attempts and errors",
            "tags": ["jobs"],
            "parameters": [JOB_ID_PATH, EXPECT, PREFER],
            "responses": {
                "200": {
                    "description": "The job (or its result with Expect: 200-ok)",
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Job"},
                                    {"$ref": "#/components/schemas/Result"},
                                ]
                            }
                        }
                    },
                },
                "303": {"description": "The job completed: see its result", "headers": LOCATION},
                "404": problem("No such job"),
                **wait_errors,
                **standard_errors(params=True),
            },
        },
        ("/jobs/{job_id}", "delete"): {
            "operationId": "discardJob",
            "summary": "Discard a job in any state: delete it (a running job's worker is fenced "
            "off: its outcome is refused as stale)",
            "tags": ["jobs"],
            "parameters": [JOB_ID_PATH],
            "responses": {
                "204": {"description": "Deleted; its counts stay in the metrics' totals"},
                "404": problem("No such job"),
                **standard_errors(params=True),
            },
        },
        ("/jobs/{job_id}/result", "get"): {
            "operationId": "getJobResult",
            "summary": "The result of a completed job",
            "tags": ["jobs"],
            "parameters": [JOB_ID_PATH],
            "responses": {
                "200": ok("The result", "Result"),
                "404": problem("No such job, or it has not completed yet"),
                "410": problem("The job ended dead, cancelled or shed"),
                **standard_errors(params=True),
            },
        },
        ("/jobs/{job_id}/retry", "post"): {
            "operationId": "retryJob",
            "summary": "Run a finished, dead, cancelled or waiting job again now",
            "tags": ["jobs"],
            "parameters": [JOB_ID_PATH],
            "responses": {
                "200": ok("The job, available again", "Job"),
                "404": problem("No such job"),
                "409": problem("The job is running or already available"),
                **standard_errors(params=True),
            },
        },
        ("/jobs/{job_id}/cancel", "post"): {
            "operationId": "cancelJob",
            "summary": "Cancel a job that has not started",
            "tags": ["jobs"],
            "parameters": [JOB_ID_PATH],
            "responses": {
                "200": ok("The job, cancelled", "Job"),
                "404": problem("No such job"),
                "409": problem("The job is running or finished"),
                **standard_errors(params=True),
            },
        },
        ("/jobs/bulk", "post"): {
            "operationId": "bulkJobs",
            "summary": "Retry, cancel or discard every job a filter matches",
            "description": "Acts on the matching jobs the action applies to (retry: dead, "
            "cancelled, shed, completed, retryable and scheduled ones; cancel: scheduled, "
            "available and retryable ones; discard: any), each as the single-job operation "
            "does, in batches of bounded size. `dry_run` only counts them. A body without any "
            'filter is refused unless it says `"all": true`.',
            "tags": ["jobs"],
            "requestBody": json_request(BULK_BODY),
            "responses": {
                "200": {
                    "description": "How many jobs were changed (or would be, on a dry run)",
                    "content": {"application/json": {"schema": BULK_RESULT}},
                },
                **standard_errors(body=True),
            },
        },
        ("/jobs/versions", "get"): {
            "operationId": "listVersions",
            "summary": "Jobs still to run per kind and argument version",
            "description": "Available, scheduled, retryable and running jobs counted per kind "
            "and version of their arguments, so that a rolling deploy can tell when the last "
            "job of an old version is gone (docs/versions.md).",
            "tags": ["jobs"],
            "parameters": [query("kind", NAME, "Only jobs of this kind.")],
            "responses": {"200": ok("Versions", "VersionList"), **standard_errors(params=True)},
        },
        ("/queues", "get"): {
            "operationId": "listQueues",
            "summary": "Queues with job counts by state and live workers",
            "tags": ["jobs"],
            "responses": {"200": ok("Queues", "QueueList"), **standard_errors()},
        },
        ("/kinds", "get"): {
            "operationId": "listKinds",
            "summary": "Job kinds this server accepts",
            "tags": ["jobs"],
            "responses": {"200": ok("Kinds", "KindList"), **standard_errors()},
        },
    }
