"""REST resources for topics, for producers and consumers in any language (docs/events.md).

- `GET /topics`: topics with their partitions' heads and each consumer group's lag (read);
- `POST /topics/{name}/events`: publish one event, with an optional `Idempotency-Key` (enqueue);
  the server's application makes its subscriptions' jobs in the same transaction;
- `GET /topics/{name}/partitions/{partition}/events?after=N&limit=M`: read by offset (read);
- `POST /topics/{name}/groups/{group}/fetch` and `…/commit`: a consumer group read by workers
  in other languages, a partition at a time under a lease (worker; offload/events/_remote.py);
- `POST /topics/{name}/replay`: reset a group, or re-deliver to a subscription (admin).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response
from starlette.routing import Route

from offload.events import Event, Topic, find_topic
from offload.events import replay as run_replay
from offload.events._remote import commit as remote_commit
from offload.events._remote import fetch as remote_fetch
from offload.server._context import Call, Server, api
from offload.server._http import iso, json_response, query_params, read_json
from offload.server._links import link
from offload.server._problems import Problem
from offload.server._schema import check
from offload.server._spec import (
    JSON_OBJECT,
    JSON_VALUE,
    NAME,
    TIME,
    TOKEN,
    Spec,
    header,
    json_request,
    ok,
    problem,
    query,
    standard_errors,
)

MAX_READ = 1000
STREAM_POLL = 0.5  # seconds between reads of a topic an event stream has caught up with
STREAM_MAX = 300.0  # seconds one stream lasts; EventSource reconnects with Last-Event-ID
STREAM_RETRY_MS = 1000
OFFSET: Spec = {"type": "integer", "minimum": 0, "maximum": 2**62}
NULLABLE_TEXT: Spec = {"type": "string", "maxLength": 1000, "nullable": True}
IDEMPOTENCY = header(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
    "A client-chosen key: a retried publish with the same key returns the event the first "
    "appended (for as long as the topic keeps it).",
)
PUBLISH_BODY: Spec = {
    "type": "object",
    "required": ["payload"],
    "additionalProperties": False,
    "properties": {
        "payload": JSON_VALUE,
        "key": {**NULLABLE_TEXT, "description": "Picks the partition (CRC-32 of its UTF-8)."},
        "meta": JSON_OBJECT,
    },
}
FETCH_BODY: Spec = {
    "type": "object",
    "required": ["worker"],
    "additionalProperties": False,
    "properties": {
        "worker": {"type": "string", "pattern": "^[!-~]{1,200}$"},
        "max": {"type": "integer", "minimum": 1, "maximum": MAX_READ},
        "lease_seconds": {"type": "number", "minimum": 1, "maximum": 3600},
    },
}
COMMIT_BODY: Spec = {
    "type": "object",
    "required": ["partition", "job_id", "lease_token", "expect", "next_offset"],
    "additionalProperties": False,
    "properties": {
        "partition": {"type": "integer", "minimum": 0, "maximum": 1023},
        "job_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        "lease_token": TOKEN,
        "expect": OFFSET,
        "next_offset": OFFSET,
        "release": {"type": "boolean"},
        "lease_seconds": {"type": "number", "minimum": 1, "maximum": 3600},
    },
}
REPLAY_BODY: Spec = {
    "type": "object",
    "required": ["group"],
    "additionalProperties": False,
    "properties": {
        "group": NAME,
        "from_offset": OFFSET,
        "since": {**TIME, "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-"},
    },
}
EVENT_PROPERTIES: Spec = {
    "topic": {"type": "string"},
    "partition": {"type": "integer"},
    "offset": {"type": "integer"},
    "key": {"type": "string", "nullable": True},
    "payload": JSON_VALUE,
    "published_at": TIME,
    "meta": JSON_OBJECT,
}
COMPONENTS: Spec = {
    "Event": {"type": "object", "required": list(EVENT_PROPERTIES), "properties": EVENT_PROPERTIES},
    "EventPage": {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
        },
    },
    "TopicList": {
        "type": "object",
        "required": ["topics"],
        "properties": {
            "topics": {"type": "array", "items": {"$ref": "#/components/schemas/TopicInfo"}}
        },
    },
    "TopicInfo": {
        "type": "object",
        "required": ["name", "partitions", "retention_seconds", "max_events", "heads", "groups"],
        "properties": {
            "name": {"type": "string"},
            "partitions": {"type": "integer"},
            "retention_seconds": {"type": "number", "nullable": True},
            "max_events": {"type": "integer", "nullable": True},
            "heads": {"type": "array", "items": {"type": "integer"}},
            "groups": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "integer"}},
                "description": "Each group's next offset per partition.",
            },
            "subscriptions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "GroupBatch": {
        "type": "object",
        "required": ["partition", "job_id", "lease_token", "next_offset", "events"],
        "properties": {
            "partition": {"type": "integer"},
            "job_id": {"type": "integer"},
            "lease_token": TOKEN,
            "next_offset": {"type": "integer", "description": "Commit with this as `expect`."},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
        },
    },
    "GroupCommitted": {
        "type": "object",
        "required": ["next_offset"],
        "properties": {"next_offset": {"type": "integer"}},
    },
    "Replayed": {
        "type": "object",
        "required": ["group", "from"],
        "properties": {
            "group": {"type": "string"},
            "from": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "The offset each partition starts from.",
            },
        },
    },
}


def event_resource(e: Event) -> dict[str, Any]:
    return {
        "topic": e.topic,
        "partition": e.partition,
        "offset": e.offset,
        "key": e.key,
        "payload": e.payload,
        "published_at": iso(e.published_at.timestamp()),
        "meta": e.meta,
    }


def _topic(call: Call) -> Topic:
    name = str(call.request.path_params["name"])
    found = find_topic(call.app, name)
    if found is None:
        raise Problem("topic-not-found", f"no topic named {name!r}", topic=name)
    return found


def _name(call: Call, key: str) -> str:
    value = str(call.request.path_params[key])
    problem = check(value, NAME, f"the {key} in the path")
    if problem:
        raise Problem("invalid-parameter", problem)
    return value


@api("listTopics", "read")
async def list_topics(call: Call) -> Response:
    def read() -> list[dict[str, Any]]:
        store = call.app.store
        parts = store.partition_list()
        groups = store.group_positions()
        out = []
        for spec in store.topic_specs():
            declared = call.app.topics.get(spec.name)
            positions: dict[str, list[int]] = {}
            for g in groups:
                if g.topic == spec.name:
                    positions.setdefault(g.group, []).append(g.next_offset)
            out.append(
                {
                    "name": spec.name,
                    "partitions": spec.partitions,
                    "retention_seconds": spec.retention_seconds,
                    "max_events": spec.retention_events,
                    "heads": [p.head for p in parts if p.topic == spec.name],
                    "groups": positions,
                    "subscriptions": [s.name for s in declared.subscriptions] if declared else [],
                }
            )
        return out

    return json_response({"topics": await call.server.run(read)})


@api("publishEvent", "enqueue")
async def publish_event(call: Call) -> Response:
    key = call.request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= 200 and all("!" <= c <= "~" for c in key)):
        raise Problem("invalid-parameter", "Idempotency-Key must be 1-200 visible ASCII characters")
    _name(call, "name")
    body = await read_json(call.request, call.server.max_body, PUBLISH_BODY)
    topic = await call.server.run(_topic, call)

    def publish() -> tuple[Event, bool]:
        idems = None if key is None else [key]
        [marked] = topic.publish_marked(
            [body["payload"]], body.get("key"), meta=body.get("meta"), idempotency_keys=idems
        )
        return marked

    event, replayed = await call.server.run(publish)
    headers = {"Location": link(f"/topics/{topic.name}/partitions/{event.partition}/events")}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(event_resource(event), 200 if replayed else 201, headers)


@api("readEvents", "read")
async def read_events(call: Call) -> Response:
    _name(call, "name")
    q = query_params(call.request, call.operation["parameters"])
    text = str(call.request.path_params["partition"])
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        raise Problem("invalid-parameter", f"partition {text!r} is not a partition number")
    partition = int(text)
    topic = await call.server.run(_topic, call)
    if not 0 <= partition < topic.partitions:
        raise Problem("not-found", f"topic {topic.name!r} has partitions 0..{topic.partitions - 1}")
    found = await call.server.run(topic.read, partition, q.get("after", -1), q.get("limit", 100))
    return json_response({"events": [event_resource(e) for e in found]})


def stream_cursor(text: str | None, partitions: int) -> dict[int, int] | None:
    """A stream's position from its last event id (`p:offset,p:offset…`, the last offset
    sent per partition); None when absent or malformed."""
    if not text:
        return None
    out: dict[int, int] = {}
    for item in text.split(","):
        part, _, offset = item.partition(":")
        if not (part.isdigit() and (offset.isdigit() or offset == "-1")):
            return None
        if int(part) < partitions:
            out[int(part)] = int(offset)
    return out


async def topic_stream(
    server: Server, topic: Topic, cursor: dict[int, int], poll: float = STREAM_POLL
) -> AsyncIterator[ServerSentEvent]:
    """`ready`, then each event of the cursor's partitions after its offset there, as it is
    published (read every `poll` seconds once caught up), for at most `STREAM_MAX` seconds."""
    store = server.app.store
    yield ServerSentEvent(data="", event="ready", retry=STREAM_RETRY_MS)
    try:
        async with asyncio.timeout(STREAM_MAX):
            while True:
                sent = False
                for part in sorted(cursor):
                    found = await server.run(store.event_read, topic.name, part, cursor[part], 100)
                    for stored in found:
                        cursor[part] = stored.position
                        sent = True
                        yield ServerSentEvent(
                            data=json.dumps(event_resource(Event.of(stored))),
                            event="event",
                            id=",".join(f"{p}:{o}" for p, o in sorted(cursor.items())),
                        )
                if not sent:
                    await asyncio.sleep(poll)
    except TimeoutError:
        return


@api("streamTopic", "read")
async def stream_topic(call: Call) -> Response:
    """A topic's events as Server-Sent Events, as they are published: `event: event`, the
    event as JSON in `data`, and an `id` that resumes the stream after it (`Last-Event-ID`)."""
    _name(call, "name")
    q = query_params(call.request, call.operation["parameters"])
    topic = await call.server.run(_topic, call)
    parts = [q["partition"]] if "partition" in q else list(range(topic.partitions))
    if any(not 0 <= p < topic.partitions for p in parts):
        raise Problem("not-found", f"topic {topic.name!r} has partitions 0..{topic.partitions - 1}")
    cursor = stream_cursor(call.request.headers.get("last-event-id"), topic.partitions)
    if cursor is None:
        if "after" in q:
            cursor = dict.fromkeys(parts, q["after"])
        elif q.get("start", "latest") == "earliest":
            cursor = dict.fromkeys(parts, -1)
        else:
            heads = await call.server.run(topic.heads)
            cursor = {p: heads.get(p, 0) - 1 for p in parts}
    cursor = {p: cursor.get(p, -1) for p in parts}
    stream = topic_stream(call.server, topic, cursor)
    return EventSourceResponse(stream, ping=15, headers={"X-Accel-Buffering": "no"})


@api("fetchGroupBatch", "worker")
async def fetch_group(call: Call) -> Response:
    _name(call, "name")
    group = _name(call, "group")
    body = await read_json(call.request, call.server.max_body, FETCH_BODY)
    topic = await call.server.run(_topic, call)
    batch = await call.server.run(
        remote_fetch,
        call.app,
        topic,
        group,
        body["worker"],
        int(body.get("max", 100)),
        float(body.get("lease_seconds", 30.0)),
    )
    if batch is None:
        return Response(status_code=204)
    return json_response(
        {
            "partition": batch.partition,
            "job_id": batch.job_id,
            "lease_token": str(batch.lease_token),
            "next_offset": batch.next_offset,
            "events": [event_resource(e) for e in batch.events],
        }
    )


@api("commitGroupBatch", "worker")
async def commit_group(call: Call) -> Response:
    _name(call, "name")
    group = _name(call, "group")
    body = await read_json(call.request, call.server.max_body, COMMIT_BODY)
    topic = await call.server.run(_topic, call)
    done = await call.server.run(
        lambda: remote_commit(
            call.app,
            topic,
            group,
            int(body["partition"]),
            int(body["job_id"]),
            int(body["lease_token"]),
            int(body["expect"]),
            int(body["next_offset"]),
            release=bool(body.get("release", True)),
            lease_seconds=float(body.get("lease_seconds", 30.0)),
        )
    )
    if not done:
        raise Problem(
            "stale-lease",
            f"partition {body['partition']} of group {group!r} is no longer held under this "
            "lease, or a replay moved its offset: nothing was committed; fetch again",
        )
    return json_response({"next_offset": int(body["next_offset"])})


@api("replayTopic", "admin")
async def replay_topic(call: Call) -> Response:
    _name(call, "name")
    body = await read_json(call.request, call.server.max_body, REPLAY_BODY)
    topic = await call.server.run(_topic, call)
    since = None
    if "since" in body:
        try:
            since = datetime.fromisoformat(str(body["since"]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise Problem("invalid-request", f"since: {exc}") from None
        if since.tzinfo is None:
            raise Problem("invalid-request", "since needs a time zone offset, e.g. Z")
    if ("from_offset" in body) == (since is not None):
        raise Problem("invalid-request", "give from_offset or since, one of them")
    starts = await call.server.run(
        lambda: run_replay(topic, body["group"], from_offset=body.get("from_offset"), since=since)
    )
    return json_response({"group": body["group"], "from": {str(k): v for k, v in starts.items()}})


def operations() -> dict[tuple[str, str], Spec]:
    name = {"name": "name", "in": "path", "required": True, "schema": NAME}
    group = {"name": "group", "in": "path", "required": True, "schema": NAME}
    partition = {
        "name": "partition",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": 1023},
    }
    missing = {"404": problem("No such topic (or partition)")}
    return {
        ("/topics", "get"): {
            "operationId": "listTopics",
            "summary": "Topics, their partitions' heads and each consumer group's offsets",
            "tags": ["topics"],
            "responses": {"200": ok("The topics", "TopicList"), **standard_errors()},
        },
        ("/topics/{name}/events", "post"): {
            "operationId": "publishEvent",
            "summary": "Publish an event (and make the server's subscriptions' jobs)",
            "tags": ["topics"],
            "parameters": [name, IDEMPOTENCY],
            "requestBody": json_request(PUBLISH_BODY),
            "responses": {
                "201": ok("Appended", "Event"),
                "200": ok("Published before with this Idempotency-Key: that event", "Event"),
                **missing,
                **standard_errors(body=True, params=True),
            },
        },
        ("/topics/{name}/partitions/{partition}/events", "get"): {
            "operationId": "readEvents",
            "summary": "Read a partition's events by offset",
            "tags": ["topics"],
            "parameters": [
                name,
                partition,
                query("after", {"type": "integer", "minimum": -1, "maximum": 2**62}, "Above."),
                query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_READ}, "(100)"),
            ],
            "responses": {
                "200": ok("Events in offset order", "EventPage"),
                **missing,
                **standard_errors(params=True),
            },
        },
        ("/topics/{name}/stream", "get"): {
            "operationId": "streamTopic",
            "summary": "A topic's events as Server-Sent Events, as they are published",
            "tags": ["topics"],
            "parameters": [
                name,
                query("partition", {"type": "integer", "minimum": 0, "maximum": 1023}, "Only."),
                query("after", {"type": "integer", "minimum": -1, "maximum": 2**62}, "Above."),
                query(
                    "start",
                    {"type": "string", "enum": ["latest", "earliest"]},
                    "Without `after` or Last-Event-ID: new events only (latest) or all kept.",
                ),
                header(
                    "Last-Event-ID",
                    {"type": "string", "maxLength": 20000},
                    "Resume after the last event received (browsers send it by themselves).",
                ),
            ],
            "responses": {
                "200": {
                    "description": "An event stream: `ready`, then an `event` per event, whose "
                    "`data` is the Event as JSON and whose `id` resumes after it",
                    "content": {
                        "text/event-stream": {
                            "schema": {
                                "type": "object",
                                "required": ["event", "data"],
                                "properties": {
                                    "event": {"type": "string", "enum": ["ready", "event"]},
                                    "data": {"type": "string"},
                                    "id": {"type": "string"},
                                    "retry": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                **missing,
                **standard_errors(params=True),
            },
        },
        ("/topics/{name}/groups/{group}/fetch", "post"): {
            "operationId": "fetchGroupBatch",
            "summary": "Take a partition of a consumer group under a lease, with a batch",
            "tags": ["topics"],
            "parameters": [name, group],
            "requestBody": json_request(FETCH_BODY),
            "responses": {
                "200": ok("A batch of one partition, held under the lease", "GroupBatch"),
                "204": {"description": "No partition has events to read now"},
                **missing,
                **standard_errors(body=True, params=True),
            },
        },
        ("/topics/{name}/groups/{group}/commit", "post"): {
            "operationId": "commitGroupBatch",
            "summary": "Commit a batch's offset and hand the partition on (or keep it)",
            "tags": ["topics"],
            "parameters": [name, group],
            "requestBody": json_request(COMMIT_BODY),
            "responses": {
                "200": ok("Committed", "GroupCommitted"),
                "409": problem("The lease was lost or a replay moved the offset"),
                **missing,
                **standard_errors(body=True, params=True),
            },
        },
        ("/topics/{name}/replay", "post"): {
            "operationId": "replayTopic",
            "summary": "Reset a consumer group, or re-deliver to a subscription",
            "tags": ["topics"],
            "parameters": [name],
            "requestBody": json_request(REPLAY_BODY),
            "responses": {
                "200": ok("Replaying from these offsets", "Replayed"),
                **missing,
                **standard_errors(body=True, params=True),
            },
        },
    }


ROUTES = [
    Route("/topics", list_topics, methods=["GET"]),
    Route("/topics/{name}/events", publish_event, methods=["POST"]),
    Route("/topics/{name}/partitions/{partition}/events", read_events, methods=["GET"]),
    Route("/topics/{name}/stream", stream_topic, methods=["GET"]),
    Route("/topics/{name}/groups/{group}/fetch", fetch_group, methods=["POST"]),
    Route("/topics/{name}/groups/{group}/commit", commit_group, methods=["POST"]),
    Route("/topics/{name}/replay", replay_topic, methods=["POST"]),
]
