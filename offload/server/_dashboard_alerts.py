"""The dashboard's alerts page: every alert rule with whether it fires, since when and the
value last seen, and the history of firing and resolved events (offload/app/_alerts.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offload.server._auth import Principal
from offload.server._context import Server
from offload.server._dashboard import page, render

HISTORY_SHOWN = 50


@page("dashboardAlerts")
async def alerts_page(server: Server, request: Request, principal: Principal) -> Response:
    def load() -> dict[str, Any]:
        alerts = server.app.alerts
        states = alerts.states()
        rows = [(rule, states.get(rule.name)) for rule in alerts.rules()]
        return {
            "rows": rows,
            "firing": sum(1 for _, s in rows if s is not None and s.firing),
            "history": alerts.history(HISTORY_SHOWN),
            "now": server.app.store.now(),
        }

    data = await server.run(load)
    return render(server, request, principal, "alerts.html", {"page": "alerts", **data})


ROUTES = [Route("/ui/alerts", alerts_page, methods=["GET"])]
