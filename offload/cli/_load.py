"""Finds the user's `Offload` application from a `module:attribute` path."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from offload.app._offload import Offload


def load_app(path: str | None, url: str | None, **settings: Any) -> Offload:
    """Import `module:attr` (the current folder is importable), or make a bare app.

    A bare app (no path) serves commands that need no job code: `jobs`, `stats`, `migrate`;
    `settings` are its `Offload(...)` options. `url` (a command's `--url`) overrides the app's
    store URL, with a warning when it replaces one given in code or in `$OFFLOAD_URL`.
    """
    if not path:
        bare = Offload(**settings)
        if url:
            bare.config = bare.config.with_url_override(url)
        return bare
    module_name, _, attr = path.partition(":")
    if not module_name:
        raise click.BadParameter(f"{path!r} should look like 'myapp:app'", param_hint="APP")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import module {module_name!r}: {exc}", param_hint="APP"
        ) from exc
    if attr:
        app = getattr(module, attr, None)
    else:
        found = [v for v in vars(module).values() if isinstance(v, Offload)]
        app = found[0] if len(found) == 1 else None
        if app is None:
            raise click.BadParameter(
                f"module {module_name!r} holds {len(found)} Offload apps; name one as "
                f"{module_name}:app",
                param_hint="APP",
            )
    if not isinstance(app, Offload):
        raise click.BadParameter(
            f"{path!r} is not an Offload application (got {type(app).__name__})",
            param_hint="APP",
        )
    if url:
        app.config = app.config.with_url_override(url)
    return app
