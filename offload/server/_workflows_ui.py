"""The dashboard's workflow pages: the list of workflows, and one workflow drawn as a graph of
its steps, each coloured by its state and linked to its job (docs/workflows.md)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offload.server._auth import Principal
from offload.server._context import Server
from offload.server._dashboard import page, params, render
from offload.server._http import path_id
from offload.server._problems import Problem
from offload.server._spec import JOB_ID, Spec, query
from offload.store._workflows import (
    KINDS,
    STEP,
    UNDO,
    WORKFLOW_STATES,
    StepRecord,
    WorkflowFilter,
)

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 46, 56, 22, 12


def layout(steps: list[StepRecord]) -> dict[str, Any]:
    """Boxes and edges of a workflow's graph: steps in columns by how many steps come before
    them; undo steps under the step they undo, callbacks (on_failure) after the last column."""
    by_name = {s.name: s for s in steps}
    level: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in level:
            s = by_name[name]
            deps = [d for d in s.depends_on if by_name[d].role == STEP]
            level[name] = 0 if not deps else 1 + max(depth(d) for d in deps)
        return level[name]

    main = [s for s in steps if s.role == STEP]
    columns: dict[int, list[StepRecord]] = {}
    for s in main:
        columns.setdefault(depth(s.name), []).append(s)
    rows = max((len(c) for c in columns.values()), default=1)
    place: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, s in enumerate(members):
            place[s.name] = (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    low = PAD + rows * (BOX_H + GAP_Y) + GAP_Y
    last = max(columns, default=0)
    others = [s for s in steps if s.role != STEP]
    extra = 0
    for s in others:
        if s.role == UNDO and s.undo_of in place:
            place[s.name] = (place[s.undo_of][0], low)
        else:
            place[s.name] = (PAD + (last + 1 + extra) * (BOX_W + GAP_X), PAD)
            extra += 1
    boxes = [
        {"x": place[s.name][0], "y": place[s.name][1], "step": s, "undo": s.role == UNDO}
        for s in steps
    ]
    edges = []
    for s in steps:
        x, y = place[s.name]
        if s.role == STEP:
            for d in s.depends_on:
                dx, dy = place[d]
                edges.append(
                    {
                        "x1": dx + BOX_W,
                        "y1": dy + BOX_H / 2,
                        "x2": x,
                        "y2": y + BOX_H / 2,
                        "dash": False,
                    }
                )
        elif s.role == UNDO and s.undo_of in place:
            ux, uy = place[s.undo_of]
            edges.append(
                {"x1": ux + BOX_W / 2, "y1": uy + BOX_H, "x2": x + BOX_W / 2, "y2": y, "dash": True}
            )
    width = max((x for x, _ in place.values()), default=0.0) + BOX_W + PAD
    height = max((y for _, y in place.values()), default=0.0) + BOX_H + PAD
    return {"boxes": boxes, "edges": edges, "w": width, "h": height, "bw": BOX_W, "bh": BOX_H}


def _edge(x1: float, y1: float, x2: float, y2: float, dash: bool) -> dict[str, Any]:
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "dash": dash}


@page("dashboardWorkflows")
async def workflows_page(server: Server, request: Request, principal: Principal) -> Response:
    q = params(server, request, form=True)
    state, kind = q.get("state"), q.get("kind")
    flt = WorkflowFilter([state] if state else None, kind, 100, None)

    def load() -> dict[str, Any]:
        store = server.app.store
        return {
            "workflows": store.workflow_list(flt),
            "counts": store.workflow_counts(),
            "now": store.now(),
        }

    data = await server.run(load)
    return render(
        server,
        request,
        principal,
        "workflows.html",
        {
            "page": "workflows",
            **data,
            "states": WORKFLOW_STATES,
            "kinds": KINDS,
            "filters": {"state": state, "kind": kind},
        },
    )


@page("dashboardWorkflow")
async def workflow_page(server: Server, request: Request, principal: Principal) -> Response:
    workflow_id = path_id(request, "workflow_id")

    def load() -> tuple[Any, float]:
        return server.app.store.workflow_get(workflow_id), server.app.store.now()

    record, now = await server.run(load)
    if record is None:
        raise Problem("workflow-not-found", f"workflow {workflow_id} does not exist")
    return render(
        server,
        request,
        principal,
        "workflow.html",
        {"page": "workflows", "wf": record, "graph": layout(record.steps), "now": now},
    )


def operations() -> dict[tuple[str, str], Spec]:
    from offload.server._openapi import _page  # the document imports this module

    states = {"type": "string", "enum": list(WORKFLOW_STATES)}
    kinds = {"type": "string", "enum": list(KINDS)}
    path = {
        "name": "workflow_id",
        "in": "path",
        "required": True,
        "schema": JOB_ID,
        "description": "The workflow's id",
    }
    return {
        ("/ui/workflows", "get"): _page(
            "dashboardWorkflows",
            "Workflows and sagas, newest first",
            [query("state", states, "Only this state."), query("kind", kinds, "Only this kind.")],
        ),
        ("/ui/workflows/{workflow_id}", "get"): _page(
            "dashboardWorkflow", "One workflow as a graph of its steps", [path]
        ),
    }


ROUTES = [
    Route("/ui/workflows", workflows_page, methods=["GET"]),
    Route("/ui/workflows/{workflow_id:int}", workflow_page, methods=["GET"]),
]
