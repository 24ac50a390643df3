"""The `offload` command."""

from __future__ import annotations

import click

from offload.cli._relay import relay
from offload.cli._worker import worker


@click.group()
@click.version_option(package_name="offload")
def main() -> None:
    """offload: background jobs on SQLite or PostgreSQL."""


main.add_command(worker)
main.add_command(relay)

__all__ = ["main"]
