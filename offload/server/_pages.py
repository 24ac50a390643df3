"""What the dashboard's pages share with the rest of the server: where the dashboard is
mounted, and errors as HTML pages for people and as problem documents for programs.

Links and redirects start with the request's `root_path`, so the dashboard works mounted under
a sub-path (`Mount("/offload", app=create_app(...))` in another Starlette app, or a proxy with
uvicorn's `--root-path`). A browser asking for a dashboard page (or a path that is nothing)
gets an error as an HTML page with the same status; the REST API, the worker protocol and any
client that does not ask for HTML get the RFC 9457 problem document.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offload.server._problems import Problem, problem_response

DASHBOARD_PREFIXES = ("/ui/", "/static/", "/problems/")


def root(request: Request) -> str:
    """The path the application is mounted at ("" at the top), for links and redirects."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def route_path(request: Request) -> str:
    """The request's path inside this application (without the mount's prefix): ASGI servers
    and Starlette's Mount keep the prefix in `path` and name it in `root_path`."""
    path = str(request.scope.get("path", "/"))
    prefix = str(request.scope.get("root_path", "")).rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :]
    return path or "/"


def is_dashboard_path(path: str, api_prefixes: tuple[str, ...] = ()) -> bool:
    """A dashboard page, or a path under no API prefix (nothing is there)."""
    if path == "/" or path.startswith(DASHBOARD_PREFIXES):
        return True
    return bool(api_prefixes) and not any(
        path == p or path.startswith(p + "/") for p in api_prefixes
    )


def wants_html(request: Request) -> bool:
    """Whether the client is a browser navigating: it asks for HTML."""
    return "text/html" in request.headers.get("accept", "").lower()


def api_prefixes(request: Request) -> tuple[str, ...]:
    """The first path segment of every route that is not a dashboard page: /jobs, /rules ..."""
    found: set[str] = set()
    for route in getattr(request.app.router, "routes", ()):
        path = getattr(route, "path", "")
        if path and not is_dashboard_path(path) and path != "/static":
            found.add("/" + path.strip("/").split("/", 1)[0])
    return tuple(sorted(found))


def error_response(request: Request, problem: Problem) -> Response:
    """An HTML error page for a browser on a dashboard path, else the problem document."""
    path = route_path(request)
    if wants_html(request) and is_dashboard_path(path, api_prefixes(request)):
        server = getattr(request.app.state, "offload", None)
        templates = getattr(server, "templates", None)
        if templates is not None:
            page: Response = templates.TemplateResponse(
                request,
                "error.html",
                {"problem": problem, "page": "error", "path": path},
                status_code=problem.status,
                headers=problem.headers,
            )
            return page
    return problem_response(problem, request.url.path)
