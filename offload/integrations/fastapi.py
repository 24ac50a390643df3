"""offload in a FastAPI or Starlette application: the app opened and closed with the ASGI
app's lifespan, the HTTP API and dashboard mounted under a sub-path, and a dependency that
gives routes the app.

    jobs = Offload("sqlite:///jobs.db")
    api = FastAPI(lifespan=lifespan(jobs))
    mount(api, jobs, "/offload")

    @api.post("/signup")
    def signup(email: str, app: Offload = Depends(get_offload)) -> None: ...

Only Starlette is imported (FastAPI is built on it); the mounted server needs `offload[server]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from offload import Offload

__all__ = ["get_offload", "lifespan", "mount"]

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def lifespan(offload_app: Offload, then: Lifespan | None = None) -> Lifespan:
    """A lifespan for `FastAPI(lifespan=...)` or `Starlette(lifespan=...)`.

    On startup it opens (and migrates) the store off the event loop and starts the servers
    `mount` put under the app (a mounted app's own lifespan is not run by Starlette); on
    shutdown it stops them and closes the app. `then` is your own lifespan, run inside it:
    what it yields is the app's state, as without offload.
    """

    @asynccontextmanager
    async def run(asgi_app: Any) -> AsyncIterator[Any]:
        asgi_app.state.offload_app = offload_app
        await asyncio.to_thread(lambda: offload_app.store)
        try:
            async with AsyncExitStack() as stack:
                for server in getattr(asgi_app.state, "offload_servers", []):
                    await stack.enter_async_context(server.router.lifespan_context(server))
                state = None
                if then is not None:
                    state = await stack.enter_async_context(then(asgi_app))
                yield state
        finally:
            await asyncio.to_thread(offload_app.close)

    return run


def mount(
    asgi_app: Starlette, offload_app: Offload, path: str = "/offload", **server_options: Any
) -> Starlette:
    """Serve offload's HTTP API and dashboard under `path` of `asgi_app`; its pages link
    within the sub-path. `server_options` are `create_app`'s (`tokens=`, `maintenance=` …).
    Use `lifespan(offload_app)` on `asgi_app` too: it runs the mounted server's lifespan."""
    from offload.server import create_app

    server = create_app(offload_app, **server_options)
    asgi_app.mount(path.rstrip("/"), server)
    servers = getattr(asgi_app.state, "offload_servers", None)
    if servers is None:
        servers = asgi_app.state.offload_servers = []
    servers.append(server)
    asgi_app.state.offload_app = offload_app
    return server


def get_offload(request: HTTPConnection) -> Offload:
    """The app of `lifespan` or `mount`, for `Depends(get_offload)` in a FastAPI route (or a
    Starlette endpoint's `get_offload(request)`)."""
    found = getattr(request.app.state, "offload_app", None)
    if not isinstance(found, Offload):
        raise RuntimeError(
            "no offload app on this ASGI app: give it lifespan=lifespan(app) or mount(...)"
        )
    return found
