"""offload in a Flask application: an extension configured from `app.config`.

    jobs = Offload()              # job types are declared on it, as anywhere
    ext = FlaskOffload(jobs)      # or FlaskOffload(jobs, flask_app)
    ext.init_app(flask_app)       # OFFLOAD_URL from flask_app.config, if set

    @flask_app.post("/signup")
    def signup():
        send_welcome.enqueue(request.form["email"])   # or current_offload().enqueue(...)

The dashboard is not mounted into Flask (a WSGI app): run `offload server` beside it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from offload import Offload

__all__ = ["FlaskOffload", "current_offload"]

EXTENSION = "offload"


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


def current_offload() -> Offload:
    """The offload app of the Flask application handling the current request (or app
    context)."""
    found = current_app.extensions.get(EXTENSION)
    if not isinstance(found, Offload):
        raise RuntimeError(
            "this Flask app has no offload app: call FlaskOffload(...).init_app(app)"
        )
    return found
