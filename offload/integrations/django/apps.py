"""The Django app config: discovers each installed app's job module when Django starts."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.utils.module_loading import module_has_submodule


class OffloadConfig(AppConfig):
    """`offload.integrations.django` in INSTALLED_APPS: opens a SQLite store and imports each
    installed app's job module (`jobs.py`, or `OFFLOAD["jobs_module"]`)."""

    name = "offload.integrations.django"
    label = "offload"
    verbose_name = "offload"

    def ready(self) -> None:
        from importlib import import_module

        from offload.integrations.django import get_app, jobs_module

        app = get_app()
        if app.config.url.startswith("sqlite"):
            # Opened (and migrated) now, not on the first enqueue: inside an atomic block that
            # has written, Django's connection holds the file's write lock a migration needs.
            # A PostgreSQL store opens on first use, so that commands that need no database
            # (collectstatic in a build) do not connect.
            _ = app.store
        module = jobs_module()
        for config in apps.get_app_configs():
            if module_has_submodule(config.module, module):
                import_module(f"{config.name}.{module}")
