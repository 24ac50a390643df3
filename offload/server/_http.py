"""Request and response plumbing shared by the API modules: bounded JSON bodies, checked
parameters, and the JSON forms of the store's records."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from offload._time import iso as iso_time
from offload.app._handle import progress_of
from offload.jobs._secrets import shown_record
from offload.server._auth import Principal
from offload.server._links import link
from offload.server._problems import Problem
from offload.server._schema import check
from offload.store._codec import latest_error
from offload.store._contract import JobRecord

JSON_TYPE = "application/json"


def iso(ts: float | None) -> str | None:
    """RFC 3339 UTC time of epoch seconds."""
    if ts is None:
        return None
    return iso_time(ts)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body, status_code=status, headers=headers, media_type=JSON_TYPE)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with 413 past `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem("invalid-parameter", "Content-Length must be a number of bytes")
        if int(declared) > limit:
            raise Problem(
                "payload-too-large",
                f"the body is {int(declared):,} bytes; this server takes at most {limit:,}",
                limit=limit,
            )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(
                "payload-too-large",
                f"the body is over {limit:,} bytes, the most this server takes",
                limit=limit,
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int, schema: dict[str, Any]) -> Any:
    """The JSON body checked against `schema` (an empty body reads as `{}`)."""
    raw = await read_body(request, limit)
    if not raw.strip():
        value: Any = {}
    else:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != JSON_TYPE and not media.endswith("+json"):
            raise Problem(
                "unsupported-media-type",
                f"send the body as {JSON_TYPE}, not {media or 'no Content-Type'}",
            )
        try:
            value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)
        except (ValueError, RecursionError) as exc:
            raise Problem("invalid-json", f"the body is not valid JSON: {exc}") from None
    problem = check(value, schema)
    if problem:
        raise Problem("invalid-request", problem)
    return value


def query_params(
    request: Request, parameters: list[dict[str, Any]], blank_is_absent: bool = False
) -> dict[str, Any]:
    """Query parameters converted and checked against the operation's declarations."""
    out: dict[str, Any] = {}
    declared = {p["name"] for p in parameters if p["in"] == "query"}
    unknown = [k for k in request.query_params if k not in declared]
    if unknown:
        raise Problem(
            "invalid-parameter",
            f"unknown query parameter {unknown[0]!r} (known: {', '.join(sorted(declared))})",
        )
    for param in parameters:
        if param["in"] != "query":
            continue
        name, schema = param["name"], param["schema"]
        values = request.query_params.getlist(name)
        if blank_is_absent:
            values = [v for v in values if v != ""]
        if not values:
            if param.get("required"):
                raise Problem("invalid-parameter", f"the query parameter {name!r} is required")
            continue
        if schema.get("type") == "array":
            value: Any = [_convert(v, schema["items"], name) for v in values]
        else:
            if len(values) > 1:
                raise Problem("invalid-parameter", f"give the query parameter {name!r} once")
            value = _convert(values[0], schema, name)
        problem = check(value, schema, f"query parameter {name!r}")
        if problem:
            raise Problem("invalid-parameter", problem)
        out[name] = value
    return out


def _convert(text: str, schema: dict[str, Any], name: str) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            if not text.lstrip("-").isdigit() or len(text) > 20:
                raise ValueError
            return int(text)
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if kind == "number":
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
    except ValueError:
        raise Problem(
            "invalid-parameter", f"the query parameter {name!r} must be a {kind}, got {text!r}"
        ) from None
    return text


def path_id(request: Request, name: str = "job_id") -> int:
    """The id of the path (a job's, or another `name`d one); the route only matches digits."""
    text = request.path_params[name]
    value = int(text)
    if value < 1 or value > 2**63 - 1:
        what = name.removesuffix("_id")
        raise Problem("invalid-parameter", f"{what} id {text} is out of range")
    return value


def reads_encrypted(principal: Principal) -> bool:
    """Whether `principal` is shown encrypted job data opened (when this server holds the key):
    admins, and the local caller of a server without tokens. The one place that decides it."""
    return principal.allows("admin")


def job_resource(record: JobRecord, listed: bool = False, readable: bool = False) -> dict[str, Any]:
    """The JSON form of a job, as `GET /jobs/{id}` shows it (secret arguments masked, encrypted
    ones `<encrypted>` unless `readable`: see `reads_encrypted`); `listed`: as `GET /jobs` shows
    it, a summary whose `errors` hold the latest entry alone, without its traceback."""
    record = shown_record(record, readable)
    links = {"self": link(f"/jobs/{record.id}")}
    if record.parent_id is not None:
        links["parent"] = link(f"/jobs/{record.parent_id}")
    if record.root_id is not None:
        links["root"] = link(f"/jobs/{record.root_id}")
    if record.state == "completed":
        links["result"] = link(f"/jobs/{record.id}/result")
    return {
        "id": record.id,
        "kind": record.kind,
        "queue": record.queue,
        "state": record.state,
        "priority": record.priority,
        "attempt": record.attempt,
        "max_attempts": record.max_attempts,
        "crashes": record.crashes,
        "version": record.version,
        "delivery": record.delivery,
        "timeout": record.timeout,
        "args": None if "args" in record.undecodable else record.args,
        "meta": None if "meta" in record.undecodable else record.meta,
        "errors": [
            error_entry(e) for e in (latest_error(record.errors) if listed else record.errors)
        ],
        "undecodable": undecodable(record),
        "unique_key": record.unique_key,
        "worker": record.lease_owner if record.state == "running" else None,
        "lease_expires_at": iso(record.lease_expires_at) if record.state == "running" else None,
        "inserted_at": iso(record.inserted_at),
        "scheduled_at": iso(record.scheduled_at),
        "attempted_at": iso(record.attempted_at),
        "finished_at": iso(record.finished_at),
        # Long jobs (docs/long-jobs.md): progress, an iteration job's cursor, a stop request.
        "progress": None if (p := progress_of(record)) is None else p.as_dict(),
        "cursor": None if "cursor" in record.undecodable else record.cursor,
        "stop_request": record.stop_request if record.state == "running" else None,
        # Correlation (docs/workflows.md): the job that enqueued it, and the first of that chain.
        "parent_id": record.parent_id,
        "root_id": record.root_id,
        "links": links,
    }


def undecodable(record: JobRecord) -> dict[str, dict[str, str]]:
    """The stored fields of a job that cannot be decoded, by name: why, and the start of the
    stored text (such a field shows as null, or as no errors); empty for a sound row."""
    return {name: {"error": u.error, "raw": u.raw} for name, u in record.undecodable.items()}


def error_entry(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    at = out.get("at")
    if isinstance(at, (int, float)):
        out["at"] = iso(float(at))
    return out
