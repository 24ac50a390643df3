"""Errors as RFC 9457 problem details: one catalogue of problem types, one response builder.

Every error the server answers is `application/problem+json` with `type`, `title`, `status`,
`detail` and, where useful, members of its own (`argument`, `state`, `job_id`, `lost` ...).
Types are relative URIs, `/problems/<slug>`, that the server also serves as short pages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from offload._text import first_surrogate

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int
    title: str
    description: str


_CATALOGUE = [
    ProblemType("invalid-json", 400, "Body is not JSON", "The request body is not valid JSON."),
    ProblemType(
        "invalid-parameter",
        400,
        "Invalid parameter",
        "A query, path or header parameter is missing, malformed or out of range.",
    ),
    ProblemType(
        "invalid-request",
        422,
        "Invalid request body",
        "The JSON body does not match the operation's schema (see /openapi.json).",
    ),
    ProblemType(
        "invalid-host",
        400,
        "Host not accepted",
        "Without tokens the server answers only requests addressed to a loopback name "
        "(localhost, 127.0.0.1, [::1]); this stops DNS-rebinding attacks from web pages.",
    ),
    ProblemType(
        "forwarded-request",
        403,
        "Forwarded request refused",
        "Without tokens the server answers only requests made on this machine; a request a "
        "proxy forwarded (Forwarded, X-Forwarded-For, X-Real-IP) may come from anywhere. "
        "Configure tokens to serve behind a proxy.",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "Send request bodies as application/json.",
    ),
    ProblemType(
        "unauthorized",
        401,
        "Authentication required",
        "Send `Authorization: Bearer <token>` with a token the server was configured with.",
    ),
    ProblemType(
        "forbidden",
        403,
        "Not allowed for this token",
        "The token's role (read < enqueue < worker < admin) does not allow this operation.",
    ),
    ProblemType(
        "cross-origin",
        403,
        "Cross-origin request refused",
        "A state-changing request came from another site or without a valid CSRF token.",
    ),
    ProblemType("not-found", 404, "Not found", "No resource at this path."),
    ProblemType(
        "job-not-found", 404, "Job not found", "No job has this id (it may have been pruned)."
    ),
    ProblemType(
        "topic-not-found",
        404,
        "Topic not found",
        "No topic has this name: the server's application does not declare it and the store "
        "holds none (docs/events.md).",
    ),
    ProblemType(
        "method-not-allowed", 405, "Method not allowed", "This path does not take this method."
    ),
    ProblemType(
        "result-not-ready",
        404,
        "Result not ready",
        "The job has not completed yet; its resource says its state.",
    ),
    ProblemType(
        "no-result",
        410,
        "The job will not produce a result",
        "The job ended dead, cancelled or shed; its resource holds the errors.",
    ),
    ProblemType(
        "not-retryable",
        409,
        "Job cannot be retried now",
        "Only dead, cancelled, shed, completed, retryable and scheduled jobs can be retried.",
    ),
    ProblemType(
        "not-cancellable",
        409,
        "Job cannot be cancelled",
        "Only scheduled, available and retryable jobs can be cancelled; running jobs finish.",
    ),
    ProblemType(
        "stale-lease",
        409,
        "Lease is stale",
        "The job is no longer leased with this token (it was rescued and claimed again, or "
        "already acknowledged); the acknowledgement changed nothing. Drop the job.",
    ),
    ProblemType(
        "payload-too-large",
        413,
        "Payload too large",
        "The request body or the job's arguments exceed the server's limit.",
    ),
    ProblemType(
        "expectation-failed",
        417,
        "Expectation failed",
        "`Expect: 200-ok` could not be honoured: the job did not complete within the wait, "
        "or it ended without a result. The job exists; follow Location. Any other "
        "expectation than 200-ok, 202-accepted or 100-continue is refused before acting.",
    ),
    ProblemType(
        "unknown-kind",
        422,
        "Unknown job kind",
        "No job type of this name is declared by the application or registered with "
        "--external-kind, and the server does not accept undeclared kinds.",
    ),
    ProblemType(
        "invalid-arguments",
        422,
        "Invalid job arguments",
        "The arguments do not fit the job type's signature or are not plain JSON.",
    ),
    ProblemType(
        "invalid-options",
        422,
        "Invalid job options",
        "An option (queue, priority, delay, run_at, max_attempts, timeout, meta) is invalid.",
    ),
    ProblemType(
        "invalid-rule",
        422,
        "Invalid blackhole rule",
        "The rule's where expression does not parse, it names neither a kind nor a condition "
        "(it would shed every job), or its expiry is not in the future.",
    ),
    ProblemType(
        "rule-not-found", 404, "Rule not found", "No blackhole rule has this id (any more)."
    ),
    ProblemType(
        "not-paused", 404, "Not paused", "The queue or kind named is not paused (any more)."
    ),
    ProblemType("workflow-not-found", 404, "Workflow not found", "No workflow has this id."),
    ProblemType(
        "invalid-workflow",
        422,
        "Invalid workflow",
        "The steps form no workflow: a name given twice, a dependency on no step, a cycle, a "
        "graph step without a name, or no step at all.",
    ),
    ProblemType(
        "idempotency-key-reused",
        422,
        "Idempotency key reused",
        "The Idempotency-Key was used before for a job of another kind or other arguments.",
    ),
    ProblemType(
        "overloaded",
        503,
        "Overloaded",
        "The store is busy or too many requests are waiting; retry after Retry-After seconds.",
    ),
    ProblemType(
        "store-unavailable",
        503,
        "Store unavailable",
        "The store could not be reached or failed; retry after Retry-After seconds.",
    ),
    ProblemType(
        "store-full",
        503,
        "Store full",
        "The store cannot take writes: the disk holding it is full (or the database server "
        "lacks a resource). Nothing of the request was stored; retry after Retry-After "
        "seconds, once its operators have freed space.",
    ),
    ProblemType(
        "store-damaged",
        503,
        "Store damaged",
        "The store's file failed its integrity check or reads as malformed. Retrying will not "
        "help until its operators restore it from a backup.",
    ),
    ProblemType(
        "encryption-key-missing",
        503,
        "Encryption key missing",
        "The job type encrypts its arguments and this server holds no key to encrypt them "
        "with ($OFFLOAD_KEYS or $OFFLOAD_KEYS_FILE); enqueue from a process that holds it.",
    ),
    ProblemType("internal-error", 500, "Internal error", "An unexpected error; see server logs."),
]
CATALOGUE: dict[str, ProblemType] = {p.slug: p for p in _CATALOGUE}


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.type = CATALOGUE[slug]
        self.detail = detail
        self.status = status or self.type.status
        self.headers = dict(headers or {})
        self.extra = extra


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    body: dict[str, Any] = {
        "type": f"/problems/{problem.type.slug}",
        "title": problem.type.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance:
        body["instance"] = instance
    for key, value in problem.extra.items():
        if value is not None:
            body[key] = value
    text = json.dumps(body, ensure_ascii=False)
    if first_surrogate(text) is not None:  # a detail quoting bad input: escape, never fail
        text = json.dumps(body)
    return Response(
        text,
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )
