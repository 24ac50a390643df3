"""offload in a Django project: settings, job discovery, enqueue in Django's transactions,
`manage.py offload …` and test helpers.

Add `"offload.integrations.django"` to `INSTALLED_APPS` and an `OFFLOAD` setting; declare job
types on `get_app()` in each app's `jobs.py`, which is imported when Django starts.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from offload import Offload

__all__ = ["connection", "enqueue_on_commit", "get_app"]

_lock = threading.Lock()
_app: Offload | None = None


def get_app() -> Offload:
    """The project's `Offload` application, built once from `settings.OFFLOAD`.

    `OFFLOAD = {"url": ...}` plus any other keyword option of `Offload(...)`; or
    `OFFLOAD = {"app": "myproject.jobs:app"}` to use an application of your own.
    """
    global _app
    with _lock:
        if _app is None:
            _app = _build(dict(getattr(settings, "OFFLOAD", {})))
        return _app


def _build(options: dict[str, Any]) -> Offload:
    options.pop("jobs_module", None)
    path = options.pop("app", None)
    if path is None:
        return Offload(**options)
    if options:
        raise ImproperlyConfigured(
            f"OFFLOAD names an app ({path!r}): its options belong in its own Offload(...), "
            f"not in the setting ({', '.join(sorted(options))})"
        )
    module_name, _, attr = str(path).partition(":")
    found = getattr(importlib.import_module(module_name), attr or "app", None)
    if not isinstance(found, Offload):
        raise ImproperlyConfigured(f"OFFLOAD['app'] = {path!r} is not an Offload application")
    return found


def jobs_module() -> str:
    """The module name imported from each installed app to declare its job types."""
    return str(getattr(settings, "OFFLOAD", {}).get("jobs_module", "jobs"))


def connection(using: str = "default") -> Any:
    """The DB-API connection under Django's connection `using`, for `connection=`: a job
    enqueued on it commits or rolls back with the enclosing `transaction.atomic()`.

    Only for a store in the same database as `using` (the same SQLite file or PostgreSQL
    database); for another one, use `enqueue_on_commit`.
    """
    wrapper = connections[using]
    wrapper.ensure_connection()
    raw = wrapper.connection
    if type(raw).__module__.startswith("psycopg2"):
        raise ImproperlyConfigured(
            f"Django's {using!r} connection uses psycopg2; offload joins psycopg 3 connections "
            "only: install psycopg 3 (Django then uses it), or use enqueue_on_commit"
        )
    return raw


def enqueue_on_commit(
    job: Any, *args: Any, using: str | None = None, **kwargs: Any
) -> Callable[[], Any]:
    """Enqueue `job(*args, **kwargs)` once Django's current transaction on `using` commits
    (at once outside one): for a store in another database than Django's. Not atomic: a
    crash between the commit and the enqueue loses the job (the outbox does not).

    `job` is a job type, or `job.options(...)`. Returns the callback given to `on_commit`.
    """

    def send() -> Any:
        return job.enqueue(*args, **kwargs)

    transaction.on_commit(send, using=using)
    return send


def __getattr__(name: str) -> Offload:
    """`offload.integrations.django:app` is the project's app, for the `offload` command (and
    its worker processes, which set Django up from `DJANGO_SETTINGS_MODULE` first)."""
    if name != "app":
        raise AttributeError(name)
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup()
    return get_app()
