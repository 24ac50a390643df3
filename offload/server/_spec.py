"""Building blocks of the OpenAPI document: shared schemas, parameters and responses.

Request schemas are inline (the server checks requests against them with `_schema.check`);
response schemas are components referenced by `$ref`.
"""

from __future__ import annotations

from typing import Any

from offload._states import STATES
from offload.server._config import NAME_PATTERN

Spec = dict[str, Any]

NAME: Spec = {"type": "string", "pattern": NAME_PATTERN}
TOKEN: Spec = {
    "type": "string",
    "pattern": "^[0-9]{1,19}$",
    "description": "The lease token of the claim, as a decimal string (it exceeds 2^53).",
}
JOB_ID: Spec = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
TIME: Spec = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Spec = {"type": "string", "format": "date-time", "nullable": True}
# A time a request names: the server takes 1970-01-01..9999-12-31 UTC once the offset is added
# (offload/_time.py); the schema says years 1971-9998, which no offset carries out of it.
ACCEPTED_TIME: Spec = {
    "type": "string",
    "format": "date-time",
    "pattern": "^(197[1-9]|19[89][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-",
    "description": "A time between the years 1971 and 9998, with its offset.",
}


def _ref(name: str) -> Spec:
    return {"$ref": f"#/components/schemas/{name}"}


# Any JSON value offload stores: integers within 64 bits, no NaN, nesting up to 32 levels.
JSON_VALUE: Spec = _ref("JsonValue")
JSON_OBJECT: Spec = {"type": "object", "additionalProperties": JSON_VALUE}


def json_content(schema: Spec) -> Spec:
    return {"application/json": {"schema": schema}}


def ok(description: str, schema_name: str, headers: Spec | None = None) -> Spec:
    out: Spec = {"description": description, "content": json_content(_ref(schema_name))}
    if headers:
        out["headers"] = headers
    return out


def problem(description: str, headers: Spec | None = None) -> Spec:
    out: Spec = {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
    if headers:
        out["headers"] = headers
    return out


RETRY_AFTER: Spec = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "string"},
    }
}
LOCATION: Spec = {"Location": {"description": "The job resource", "schema": {"type": "string"}}}


def standard_errors(*, body: bool = False, params: bool = False) -> Spec:
    """The problems any API operation may answer."""
    out: Spec = {
        "401": problem(
            "No valid token (when the server has tokens)",
            {"WWW-Authenticate": {"schema": {"type": "string"}}},
        ),
        "403": problem("The token's role does not allow this, or a cross-origin write"),
        "503": problem("Overloaded or the store is unavailable", RETRY_AFTER),
    }
    if params or body:
        out["400"] = problem("A malformed parameter or body")
    if body:
        out["413"] = problem("The body or the job's arguments are too large")
        out["415"] = problem("The body is not application/json")
        out["422"] = problem("The body does not fit the schema or the job type")
    return out


def json_request(schema: Spec, required: bool = True) -> Spec:
    return {"required": required, "content": json_content(schema)}


def header(name: str, schema: Spec, description: str) -> Spec:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": schema,
        "description": description,
    }


def query(name: str, schema: Spec, description: str) -> Spec:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


JOB_ID_PATH: Spec = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": JOB_ID,
    "description": "The job's id",
}

ERROR_ENTRY: Spec = {
    "type": "object",
    "properties": {
        "attempt": {"type": "integer"},
        "at": NULLABLE_TIME,
        "error": {"type": "string"},
        "traceback": {"type": "string"},
        "kind": {"type": "string"},
    },
}

UNDECODABLE: Spec = {
    "type": "object",
    "description": "Stored fields that cannot be decoded (a damaged row, or data written by "
    "something other than offload), by name: why, and the start of the stored text. Such a "
    "field reads as null (the errors list as empty). See docs/stored-data.md.",
    "additionalProperties": {
        "type": "object",
        "required": ["error", "raw"],
        "properties": {"error": {"type": "string"}, "raw": {"type": "string"}},
    },
}

COMPONENTS: Spec = {
    "JsonValue": {
        "description": "Any JSON value offload stores: integers within 64 bits, finite "
        "numbers, nesting up to 32 levels.",
        "anyOf": [
            {"type": "string", "nullable": True},
            {"type": "boolean"},
            {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
            {"type": "number", "not": {"type": "integer"}},
            {"type": "array", "items": JSON_VALUE},
            JSON_OBJECT,
        ],
    },
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "argument": {"type": "string", "description": "The argument at fault"},
            "path": {
                "type": "string",
                "description": "Where in the data the fault is, e.g. args.items[2].name",
            },
        },
        "additionalProperties": True,
    },
    "Job": {
        "type": "object",
        "required": ["id", "kind", "queue", "state", "args", "errors", "links"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "queue": {"type": "string"},
            "state": {"type": "string", "enum": list(STATES)},
            "priority": {"type": "integer"},
            "attempt": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "crashes": {"type": "integer"},
            "version": {
                "type": "integer",
                "description": "The version of the job's arguments (docs/versions.md).",
            },
            "delivery": {"type": "string", "enum": ["at_least_once", "at_most_once"]},
            "timeout": {"type": "number", "nullable": True},
            "args": {
                "type": "object",
                "nullable": True,
                "description": "null when the stored arguments cannot be decoded "
                "(`undecodable` says why).",
            },
            "meta": {"type": "object", "nullable": True},
            "errors": {"type": "array", "items": ERROR_ENTRY},
            "undecodable": UNDECODABLE,
            "unique_key": {"type": "string", "nullable": True},
            "worker": {"type": "string", "nullable": True},
            "lease_expires_at": NULLABLE_TIME,
            "inserted_at": TIME,
            "scheduled_at": TIME,
            "attempted_at": NULLABLE_TIME,
            "finished_at": NULLABLE_TIME,
            "progress": {
                "type": "object",
                "nullable": True,
                "description": "How far the job is (docs/long-jobs.md); null before it said.",
                "properties": {
                    "done": {"type": "number"},
                    "total": {"type": "number", "nullable": True},
                    "percent": {"type": "number", "nullable": True},
                    "eta": {
                        "type": "string",
                        "format": "date-time",
                        "nullable": True,
                        "description": "Estimated finish, while it runs.",
                    },
                },
            },
            "cursor": {
                "nullable": True,
                "description": "An iteration job's stored cursor (any JSON value).",
            },
            "stop_request": {
                "type": "string",
                "nullable": True,
                "enum": ["cancel", "pause", None],
                "description": "Why a running job is asked to stop at its next yield.",
            },
            "parent_id": {
                "type": "integer",
                "nullable": True,
                "description": "The job that was running where this one was enqueued.",
            },
            "root_id": {
                "type": "integer",
                "nullable": True,
                "description": "The first job of the chain of jobs that caused this one.",
            },
            "links": {
                "type": "object",
                "required": ["self"],
                "properties": {
                    "self": {"type": "string"},
                    "result": {"type": "string"},
                    "parent": {"type": "string"},
                    "root": {"type": "string"},
                },
            },
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "next"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "next": {"type": "string", "nullable": True},
        },
    },
    "Result": {
        "type": "object",
        "required": ["id", "kind", "state", "result"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "state": {"type": "string", "enum": ["completed"]},
            "result": {"nullable": True},
            "finished_at": NULLABLE_TIME,
            "undecodable": UNDECODABLE,
        },
    },
    "QueueList": {
        "type": "object",
        "required": ["queues"],
        "properties": {
            "queues": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "depth", "counts", "workers"],
                    "properties": {
                        "name": {"type": "string"},
                        "depth": {"type": "integer"},
                        "counts": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                        },
                        "workers": {"type": "integer"},
                        "paused": {"type": "boolean", "description": "Not claimed now."},
                    },
                },
            }
        },
    },
    "VersionList": {
        "type": "object",
        "required": ["versions"],
        "properties": {
            "versions": {
                "type": "array",
                "description": "Jobs still to run per kind and argument version, by kind then "
                "version (docs/versions.md).",
                "items": {
                    "type": "object",
                    "required": ["kind", "version", "total"],
                    "properties": {
                        "kind": {"type": "string"},
                        "version": {"type": "integer"},
                        "available": {"type": "integer"},
                        "scheduled": {"type": "integer"},
                        "retryable": {"type": "integer"},
                        "running": {"type": "integer"},
                        "total": {"type": "integer"},
                        "declared": {
                            "type": "integer",
                            "nullable": True,
                            "description": "The version this server's code declares for "
                            "the kind (null: not declared here).",
                        },
                    },
                },
            },
        },
    },
    "KindList": {
        "type": "object",
        "required": ["kinds", "undeclared_allowed"],
        "properties": {
            "undeclared_allowed": {"type": "boolean"},
            "kinds": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "queue", "declared"],
                    "properties": {
                        "name": {"type": "string"},
                        "queue": {"type": "string"},
                        "declared": {"type": "boolean"},
                        "paused": {"type": "boolean", "description": "Not claimed now."},
                        "priority": {"type": "integer"},
                        "max_attempts": {"type": "integer"},
                        "delivery": {"type": "string"},
                        "timeout": {"type": "number", "nullable": True},
                        "cron": {"type": "string", "nullable": True},
                        "version": {
                            "type": "integer",
                            "description": "The version of its arguments this server's code "
                            "declares (docs/versions.md).",
                        },
                        "parameters": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "required": {"type": "boolean"},
                                    "annotation": {"type": "string", "nullable": True},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "Fetched": {
        "type": "object",
        "required": ["jobs", "lease_seconds"],
        "properties": {
            "lease_seconds": {"type": "number"},
            "jobs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "token", "kind", "queue", "args", "attempt"],
                    "properties": {
                        "id": {"type": "integer"},
                        "token": {"type": "string"},
                        "kind": {"type": "string"},
                        "queue": {"type": "string"},
                        "args": {"type": "object"},
                        "meta": {"type": "object"},
                        "attempt": {"type": "integer"},
                        "max_attempts": {"type": "integer"},
                        "delivery": {"type": "string"},
                        "timeout": {"type": "number", "nullable": True},
                        "version": {
                            "type": "integer",
                            "description": "The version of `args` (docs/versions.md).",
                        },
                        "lease_expires_at": TIME,
                    },
                },
            },
        },
    },
    "HeartbeatResult": {
        "type": "object",
        "required": ["lost"],
        "properties": {"lost": {"type": "array", "items": {"type": "integer"}}},
    },
    "Acknowledged": {
        "type": "object",
        "required": ["id", "state"],
        "properties": {
            "id": {"type": "integer"},
            "state": {"type": "string", "enum": ["completed", "retryable", "dead"]},
            "retry_in": {"type": "number", "nullable": True},
        },
    },
    "Released": {
        "type": "object",
        "required": ["released"],
        "properties": {"released": {"type": "integer"}},
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "store": {"type": "string"}},
    },
}
