"""`offload migrate`: create or upgrade a store's schema, for deploys that migrate explicitly.

Apps migrate on first use by default; this command is for `auto_migrate=False` set-ups and for
preparing a database before any worker starts. Running it twice applies nothing the second time.
"""

from __future__ import annotations

import click

from offload.cli._common import friendly_errors, json_option, opened_app, store_options
from offload.cli._output import print_json, safe_url


@click.command("migrate")
@store_options
@json_option
@friendly_errors
def migrate(app_path: str | None, url: str | None, as_json: bool) -> None:
    """Apply pending schema migrations and print the schema version.

    \b
      offload migrate --url postgresql://offload@db/jobs
      offload migrate --json
    """
    with opened_app(app_path, url, require_schema=False, auto_migrate=False) as app:
        store = app.store
        before = store.schema_version()
        applied = store.migrate()
        version = store.schema_version()
        where = safe_url(app.config.url)
        engine = store.engine
    if as_json:
        print_json(
            {
                "url": where,
                "engine": engine,
                "previous_version": before,
                "applied": applied,
                "version": version,
            }
        )
        return
    if applied:
        names = ", ".join(str(v) for v in applied)
        plural = "s" if len(applied) > 1 else ""
        click.echo(f"applied migration{plural} {names} to {where}")
        click.echo(f"schema version {version} (was {before})")
    else:
        click.echo(f"{where} is up to date: schema version {version}")
