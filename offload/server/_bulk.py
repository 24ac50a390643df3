"""Job filters over HTTP: the body of `POST /jobs/bulk`, the search fields of the dashboard's
jobs page, and the `JobMatch` (offload/store/_bulk.py) each of them stands for."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from offload._errors import ConfigurationError
from offload._states import STATES
from offload.server._problems import Problem
from offload.server._schema import parse_datetime
from offload.server._spec import NAME, TIME, Spec, query
from offload.store._bulk import BULK_ACTIONS, MAX_TEXT, BulkResult, JobMatch

TEXT: Spec = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
_TIMES = ("inserted_since", "inserted_until", "finished_since", "finished_until")

_MATCHING = ("states", "kind", "queue", *_TIMES, "args_contain", "error_contain")
BULK_BODY: Spec = {
    "type": "object",
    "required": ["action"],
    "additionalProperties": False,
    # at least one filter, or "all": true (the endpoint says which is missing)
    "anyOf": [
        *({"required": [name]} for name in _MATCHING),
        {"required": ["all"], "properties": {"all": {"enum": [True]}}},
    ],
    "properties": {
        "action": {"type": "string", "enum": list(BULK_ACTIONS)},
        "states": {
            "type": "array",
            "items": {"type": "string", "enum": list(STATES)},
            "minItems": 1,
            "maxItems": len(STATES),
            "description": "Only jobs in these states.",
        },
        "kind": {**NAME, "description": "Only jobs of this kind."},
        "queue": {**NAME, "description": "Only jobs of this queue."},
        "inserted_since": {**TIME, "description": "Only jobs enqueued at or after this time."},
        "inserted_until": {**TIME, "description": "Only jobs enqueued before this time."},
        "finished_since": {**TIME, "description": "Only jobs that finished at or after this."},
        "finished_until": {**TIME, "description": "Only jobs that finished before this time."},
        "args_contain": {
            **TEXT,
            "description": "Only jobs whose arguments' JSON text contains this (any case).",
        },
        "error_contain": {
            **TEXT,
            "description": "Only jobs whose last error contains this text (any case).",
        },
        "all": {
            "type": "boolean",
            "description": "Required (true) to act on every job when no filter is given.",
        },
        "dry_run": {"type": "boolean", "description": "Only count; change nothing."},
    },
}

BULK_RESULT: Spec = {
    "type": "object",
    "required": ["action", "dry_run", "count"],
    "properties": {
        "action": {"type": "string", "enum": list(BULK_ACTIONS)},
        "dry_run": {"type": "boolean"},
        "count": {
            "type": "integer",
            "minimum": 0,
            "description": "Jobs changed (a dry run: jobs the action would change now).",
        },
    },
}


FILTERS = ("state", "queue", "kind", "args", "error")
PAST = {"retry": "retried", "cancel": "cancelled", "discard": "discarded"}
NAME_OR_BLANK: Spec = {"type": "string", "pattern": "^([A-Za-z0-9_.:-]{1,128})?$"}
TEXT_OR_BLANK: Spec = {"type": "string", "maxLength": MAX_TEXT}


def filter_params() -> list[Spec]:
    """The query parameters of the jobs page's search beyond state, queue and kind, and of
    what a bulk action reports back to it."""
    return [
        query("args", TEXT_OR_BLANK, "Only jobs whose arguments' JSON contains this (any case)."),
        query("error", TEXT_OR_BLANK, "Only jobs whose last error contains this (any case)."),
        query("bulk", {"type": "string", "enum": ["", *PAST.values()]}, "A bulk action done."),
        query("count", {"type": "string", "pattern": "^[0-9]{0,18}$"}, "How many it changed."),
    ]


def match_of(filters: dict[str, Any]) -> JobMatch:
    """The JobMatch of the jobs page's filter fields (blank ones left out)."""
    fields: dict[str, Any] = {}
    if filters.get("state"):
        fields["states"] = (filters["state"],)
    for name, field in (
        ("queue", "queue"),
        ("kind", "kind"),
        ("args", "args_contain"),
        ("error", "error_contain"),
    ):
        if filters.get(name):
            fields[field] = filters[name]
    return checked(fields)


def search_of(filters: dict[str, Any]) -> JobMatch | None:
    """The JobMatch of the jobs page's filter when it searches by argument or error text (which
    the plain job list cannot), else None."""
    return match_of(filters) if filters.get("args") or filters.get("error") else None


def query_of(filters: dict[str, Any], **extra: Any) -> str:
    """The jobs page's query string for a filter (blank fields left out) and more."""
    return urlencode({**{k: v for k, v in filters.items() if v}, **extra})


SEARCH_NAMES = ("args_contain", "error_contain", *_TIMES)


def search_params() -> list[Spec]:
    """The query parameters of `GET /jobs` that search beyond state, queue and kind."""
    props = BULK_BODY["properties"]
    return [query(name, props[name], props[name]["description"]) for name in SEARCH_NAMES]


def search_from_query(q: dict[str, Any]) -> JobMatch | None:
    """The JobMatch of `GET /jobs` when it searches (text or times), else None: the plain
    list serves it."""
    if not any(name in q for name in SEARCH_NAMES):
        return None
    fields: dict[str, Any] = {
        name: q[name] for name in ("kind", "queue", "args_contain", "error_contain") if name in q
    }
    if q.get("state"):
        fields["states"] = tuple(dict.fromkeys(q["state"]))
    for name in _TIMES:
        if name in q:
            moment = parse_datetime(q[name])
            if moment is None:  # the declaration checked it: this is only for the type checker
                raise Problem("invalid-parameter", f"{name} is not a date-time")
            fields[name] = moment.timestamp()
    try:
        return JobMatch(**fields)
    except ConfigurationError as exc:
        raise Problem("invalid-parameter", str(exc)) from None


def match_from_body(body: dict[str, Any]) -> JobMatch:
    """The JobMatch of a checked `POST /jobs/bulk` body; a problem when it names no filter
    and does not say `all`, or when a field cannot match any job."""
    fields: dict[str, Any] = {
        name: body[name]
        for name in ("kind", "queue", "args_contain", "error_contain")
        if name in body
    }
    if "states" in body:
        fields["states"] = tuple(dict.fromkeys(body["states"]))
    for name in _TIMES:
        if name in body:
            moment = parse_datetime(body[name])
            if moment is None:  # the schema checked it: this is only for the type checker
                raise Problem("invalid-request", f"body.{name} is not a date-time")
            fields[name] = moment.timestamp()
    match = checked(fields)
    if match.empty and not body.get("all"):
        raise Problem(
            "invalid-request",
            "the body names no filter: give states, kind, queue, a time or a text to match, "
            'or "all": true to act on every job',
        )
    return match


def checked(fields: dict[str, Any]) -> JobMatch:
    """A JobMatch of these fields, or an invalid-request problem saying why there is none."""
    try:
        return JobMatch(**fields)
    except ConfigurationError as exc:
        raise Problem("invalid-request", str(exc)) from None


def result_document(result: BulkResult) -> dict[str, Any]:
    return {"action": result.action, "dry_run": result.dry_run, "count": result.count}
