"""The `offload` command: run workers, enqueue and inspect jobs, watch the store, try a demo.

Exit codes: 0 success, 1 failure (a job failed, an id is unknown, the store is unreachable),
2 usage error (bad option, unknown job type, arguments that don't fit). See docs/cli.md.
"""

from __future__ import annotations

import importlib
import logging

import click

from offload import __version__
from offload.cli._common import add_log_format

# Each command and where it is defined: a command's module is imported when the command runs
# (or `--help` lists it), so `offload worker`, and each worker process it starts, does not
# import the server, the dashboard's queries and every other command first.
COMMANDS = {
    "worker": "offload.cli._worker:worker",
    "relay": "offload.cli._relay:relay",
    "server": "offload.cli._server:server",
    "hash-token": "offload.cli._server:hash_token_command",
    "enqueue": "offload.cli._enqueue:enqueue",
    "jobs": "offload.cli._jobs:jobs",
    "workflows": "offload.cli._workflows:workflows",
    "stats": "offload.cli._stats:stats",
    "top": "offload.cli._top:top",
    "rules": "offload.cli._rules:rules",
    "alerts": "offload.cli._alerts:alerts",
    "scale": "offload.cli._scale:scale",
    "queues": "offload.cli._queues:queues",
    "kinds": "offload.cli._queues:kinds",
    "events": "offload.cli._events:events",
    "migrate": "offload.cli._migrate:migrate",
    "keys": "offload.cli._keys:keys",
    "demo": "offload.cli._demo:demo",
}


class _LazyGroup(click.Group):
    """A group whose commands (`COMMANDS`) are imported on first use, each given
    --log-format as the group's own commands are."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attr = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
            add_log_format(command)
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)


@click.group(cls=_LazyGroup)
@click.version_option(__version__, "-V", "--version", prog_name="offload")
def main() -> None:
    """offload: background jobs on SQLite or PostgreSQL."""
    # The connection pool logs every failed connection attempt; without this, Python's
    # last-resort handler would print each one. The command's own error says it once.
    # Logging set up by a command (the worker's) or by the user's app still receives them.
    logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


add_log_format(main)  # --log-format on the group; each command gets it when it is loaded

__all__ = ["main"]
