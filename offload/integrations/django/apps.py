"""The Django app config: discovers each installed app's job module when Django starts."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.utils.module_loading import module_has_submodule


class OffloadConfig(AppConfig):
    """`offload.integrations.django` in INSTALLED_APPS: opens the store and imports each
    installed app's job module (`jobs.py`, or `OFFLOAD["jobs_module"]`)."""

    name = "offload.integrations.django"
    label = "offload"
    verbose_name = "offload"

    def ready(self) -> None:
        from importlib import import_module

        from offload.integrations.django import get_app, jobs_module

        # Opened (and migrated) now, not on the first enqueue: inside an atomic block that has
        # written, Django's connection holds the SQLite file's write lock that a migration needs.
        _ = get_app().store
        module = jobs_module()
        for config in apps.get_app_configs():
            if module_has_submodule(config.module, module):
                import_module(f"{config.name}.{module}")
