"""offload in a Flask application: an extension configured from `app.config`, and the HTTP
API and dashboard mounted under a sub-path.

    jobs = Offload()              # job types are declared on it, as anywhere
    ext = FlaskOffload(jobs)      # or FlaskOffload(jobs, flask_app)
    ext.init_app(flask_app)       # OFFLOAD_URL from flask_app.config, if set
    ext.mount(flask_app, "/ops/offload", tokens=...)   # or mount(flask_app, jobs, ...)

    @flask_app.post("/signup")
    def signup():
        send_welcome.enqueue(request.form["email"])   # or current_offload().enqueue(...)

The mounted server (an ASGI application, `offload[server]`) runs on an event-loop thread of
its own, bridged to the WSGI server (_bridge.py); each open live-update stream of the
dashboard holds one WSGI thread while it is open, so serve Flask with threads (docs/flask.md).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from offload import Offload
from offload.integrations.flask._bridge import AsgiBridge

__all__ = ["AsgiBridge", "FlaskOffload", "current_offload", "mount"]

EXTENSION = "offload"
MOUNTS = "offload.mounts"  # flask_app.extensions[MOUNTS]: {prefix: the bridge mounted there}
# a path segment as a URL carries it unescaped (RFC 3986 pchar, without percent-escapes)
SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")


class FlaskOffload:
    """The extension: makes `offload_app` (or one built from `app.config`) the app of one
    or more Flask applications.

    Config keys: `OFFLOAD_URL` (the store; overrides the URL of `offload_app`) and
    `OFFLOAD_OPTIONS` (keyword options of `Offload(...)`, when the extension builds it).
    """

    def __init__(self, offload_app: Offload | None = None, flask_app: Flask | None = None) -> None:
        self.offload = offload_app
        if flask_app is not None:
            self.init_app(flask_app)

    def init_app(self, flask_app: Flask) -> Offload:
        """Configure the app from `flask_app.config` and register it on `flask_app`."""
        url: str | None = flask_app.config.get("OFFLOAD_URL")
        options: dict[str, Any] = dict(flask_app.config.get("OFFLOAD_OPTIONS", {}))
        if self.offload is None:
            self.offload = Offload(url, **options)
        elif url is not None:
            self.offload.config = self.offload.config.with_url_override(url, "OFFLOAD_URL")
        flask_app.extensions[EXTENSION] = self.offload
        return self.offload

    def mount(self, flask_app: Flask, path: str = "/offload", **server_options: Any) -> AsgiBridge:
        """`mount(flask_app, app, path, ...)` with this extension's app (`init_app` first, when
        it has not run on `flask_app`)."""
        found = flask_app.extensions.get(EXTENSION)
        if not isinstance(found, Offload):
            found = self.init_app(flask_app)
        return mount(flask_app, found, path, **server_options)


def mount(
    flask_app: Flask, offload_app: Offload, path: str = "/offload", **server_options: Any
) -> AsgiBridge:
    """Serve offload's HTTP API and dashboard under `path` of `flask_app`; its pages link
    within the sub-path. `server_options` are `create_app`'s (`tokens=`, `maintenance=` …).

    The server runs on an event-loop thread of its own, started by the first request to it
    (in each worker process) and stopped by `close()` on what this returns, or at exit. A
    path that is not a plain sub-path, or that routes of `flask_app` (or another mount) are
    under, is a ValueError; an option `create_app` does not take is a TypeError."""
    from offload.server import create_app

    prefix = _prefix(path)
    _check_options(server_options)
    mounts: dict[str, AsgiBridge] = flask_app.extensions.setdefault(MOUNTS, {})
    _check_free(flask_app, prefix, mounts)
    server = create_app(offload_app, **server_options)
    bridge = AsgiBridge(
        server, lambda: server.router.lifespan_context(server), name=f"offload-server{prefix}"
    )
    flask_app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        flask_app.wsgi_app, {prefix: bridge}
    )
    mounts[prefix] = bridge
    flask_app.extensions.setdefault(EXTENSION, offload_app)
    return bridge


def _prefix(path: str) -> str:
    """`path` without its trailing slash, or a ValueError saying what is wrong with it."""
    if not isinstance(path, str):
        raise TypeError(f"the mount path must be a string such as '/offload', not {path!r}")
    prefix = path.rstrip("/")

    def refuse(why: str) -> ValueError:
        return ValueError(f"cannot mount offload at {path!r}: {why}")

    if not path.startswith("/"):
        raise refuse("the path must start with '/', as in '/offload'")
    if not prefix:
        raise refuse("offload would take the whole Flask application; give a sub-path")
    for segment in prefix[1:].split("/"):
        if not segment:
            raise refuse("it has an empty segment ('//')")
        if segment in (".", ".."):
            raise refuse(f"it has a {segment!r} segment")
        if not SEGMENT.fullmatch(segment):
            raise refuse(
                f"its segment {segment!r} has characters a URL path escapes (space, %, ?, # "
                "or non-ASCII); use letters, digits and -._~"
            )
    return prefix


def _check_options(options: dict[str, Any]) -> None:
    from dataclasses import fields

    from offload.server import ServerConfig

    known = {f.name for f in fields(ServerConfig)} | {"config"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"mount got server option(s) it does not know: {', '.join(unknown)}; it takes "
            f"create_app's: {', '.join(sorted(known))}"
        )


def _check_free(flask_app: Flask, prefix: str, mounts: dict[str, Any]) -> None:
    """A ValueError when something is served under `prefix` already (offload would hide it)."""

    def under(path: str, root: str) -> bool:
        return path == root or path.startswith(root + "/")

    for other in mounts:
        if under(prefix, other) or under(other, prefix):
            raise ValueError(
                f"cannot mount offload at {prefix!r}: offload is mounted at {other!r} already"
            )
    for rule in flask_app.url_map.iter_rules():
        if under(rule.rule, prefix):
            raise ValueError(
                f"cannot mount offload at {prefix!r}: the Flask app routes {rule.rule!r} "
                f"(endpoint {rule.endpoint!r}) there, and offload would hide it"
            )


def current_offload() -> Offload:
    """The offload app of the Flask application handling the current request (or app
    context)."""
    found = current_app.extensions.get(EXTENSION)
    if not isinstance(found, Offload):
        raise RuntimeError(
            "this Flask app has no offload app: call FlaskOffload(...).init_app(app)"
        )
    return found
