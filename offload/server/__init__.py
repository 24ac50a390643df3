"""The HTTP server: REST resources for jobs, a worker protocol for any language, the
dashboard and Prometheus metrics, as one ASGI application.

    from offload.server import create_app
    asgi = create_app(app, tokens=load_tokens(None))   # then serve it with uvicorn

`offload server myapp:app` does the same from the command line.
"""

from offload.server._app import create_app
from offload.server._config import ROLES, ExternalKind, ServerConfig, Token, hash_token, load_tokens

__all__ = [
    "ROLES",
    "ExternalKind",
    "ServerConfig",
    "Token",
    "create_app",
    "hash_token",
    "load_tokens",
]
