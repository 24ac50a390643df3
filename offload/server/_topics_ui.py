"""The dashboard's topics page: each topic's partitions (head, first kept offset, events
kept), retention, each consumer group's offset and lag per partition, the subscriptions with
their backlog, and replay (admin) behind a confirmation page (docs/events.md)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from offload._errors import ConfigurationError
from offload.events import find_topic, start_offsets
from offload.events import replay as run_replay
from offload.server._auth import Principal
from offload.server._config import NAME_PATTERN
from offload.server._context import Server
from offload.server._dashboard import check_form, page, read_form, render
from offload.server._pages import root
from offload.server._problems import Problem
from offload.server._spec import NAME, Spec

_NAME = re.compile(NAME_PATTERN)


def topics_view(server: Server) -> dict[str, Any]:
    """What the page shows, read in one go."""
    app = server.app
    store = app.store
    parts = store.partition_list()
    groups = store.group_positions()
    subscriptions = {s.name: t.name for t in app.topics.values() for s in t.subscriptions}
    backlog = store.kind_backlog(sorted(subscriptions))
    out = []
    for spec in store.topic_specs():
        declared = app.topics.get(spec.name)
        by_group: dict[str, list[Any]] = {}
        for g in groups:
            if g.topic == spec.name:
                by_group.setdefault(g.group, []).append(g)
        out.append(
            {
                "name": spec.name,
                "partitions": [p for p in parts if p.topic == spec.name],
                "retention": spec.retention_seconds,
                "max_events": spec.retention_events,
                "keep_unconsumed": True if declared is None else declared.keep_unconsumed,
                "groups": [
                    {"name": name, "positions": ps, "lag": sum(p.lag for p in ps)}
                    for name, ps in sorted(by_group.items())
                ],
                "subscriptions": [
                    {"name": s.name, "queue": s.options_.queue, "backlog": backlog.get(s.name, 0)}
                    for s in (declared.subscriptions if declared else [])
                ],
            }
        )
    return {"topics": out, "now": store.now()}


@page("dashboardTopics")
async def topics_page(server: Server, request: Request, principal: Principal) -> Response:
    data = await server.run(topics_view, server)
    return render(server, request, principal, "topics.html", {"page": "topics", **data})


def _since(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Problem("invalid-parameter", f"since {text!r} is not a date-time") from None
    if moment.tzinfo is None:
        raise Problem("invalid-parameter", "give since with its offset, e.g. 2026-12-07T09:30Z")
    return moment.timestamp()


@page("dashboardReplayTopic", "admin")
async def replay_page(server: Server, request: Request, principal: Principal) -> Response:
    fields = await read_form(server, request)
    check_form(server.auth, request, principal, fields)
    name = str(request.path_params["name"])
    group = fields.get("group", "")
    if not _NAME.match(name) or not _NAME.match(group):
        raise Problem("invalid-parameter", f"topic and group names match {NAME_PATTERN}")
    offset_text = fields.get("from_offset", "").strip()
    since_text = fields.get("since", "").strip()
    if bool(offset_text) == bool(since_text):
        raise Problem("invalid-parameter", "give a start offset or a start time, one of them")
    from_offset = None
    if offset_text:
        if not offset_text.isdigit() or len(offset_text) > 18:
            raise Problem("invalid-parameter", f"from_offset {offset_text!r} is not an offset")
        from_offset = int(offset_text)
    since = None if not since_text else _since(since_text)
    topic = await server.run(find_topic, server.app, name)
    if topic is None:
        raise Problem("topic-not-found", f"no topic named {name!r}", topic=name)

    def plan() -> dict[int, int]:
        return start_offsets(topic, from_offset=from_offset, since=since)

    if fields.get("confirm") != "yes":
        starts = await server.run(plan)
        context = {
            "page": "topics",
            "topic": name,
            "group": group,
            "from_offset": offset_text,
            "since": since_text,
            "starts": starts,
            "subscription": any(s.name == group for s in topic.subscriptions),
        }
        return render(server, request, principal, "topics_replay.html", context)
    try:
        await server.run(lambda: run_replay(topic, group, from_offset=from_offset, since=since))
    except ConfigurationError as exc:
        raise Problem("invalid-options", str(exc)) from None
    return RedirectResponse(f"{root(request)}/ui/topics", status_code=303)


def operations() -> dict[tuple[str, str], Spec]:
    from offload.server._openapi import _form, _page  # the document imports this module

    fields: dict[str, Spec] = {
        "csrf": {"type": "string"},
        "group": {"type": "string"},
        "from_offset": {"type": "string"},
        "since": {"type": "string"},
        "confirm": {"type": "string", "enum": ["yes"]},
    }
    param = {"name": "name", "in": "path", "required": True, "schema": NAME}
    replay = _form(
        "dashboardReplayTopic",
        "Replay a topic for a group or subscription (confirmation first)",
        fields,
        ["csrf"],
    )
    replay["responses"]["422"] = replay["responses"]["409"]
    return {
        ("/ui/topics", "get"): _page(
            "dashboardTopics", "Topics: partitions, groups' lag, subscriptions' backlog"
        ),
        ("/ui/topics/{name}/replay", "post"): {**replay, "parameters": [param]},
    }


ROUTES = [
    Route("/ui/topics", topics_page, methods=["GET"]),
    Route("/ui/topics/{name}/replay", replay_page, methods=["POST"]),
]
