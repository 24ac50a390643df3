"""Paths the API hands out (Location headers, `links` in JSON) under the prefix the server is
mounted at: `/jobs/7` of a server mounted at `/ops/offload` is `/ops/offload/jobs/7`. The
guard middleware (`_app.py`) names the prefix for the request being served, so that the
functions that build resources need no request to build their links."""

from __future__ import annotations

from contextvars import ContextVar

ROOT: ContextVar[str] = ContextVar("offload_server_root", default="")


def link(path: str) -> str:
    """`path` (absolute inside the server, e.g. "/jobs/7") as a client must request it."""
    return ROOT.get() + path
