"""The `offload` command: run workers, enqueue and inspect jobs, watch the store, try a demo.

Exit codes: 0 success, 1 failure (a job failed, an id is unknown, the store is unreachable),
2 usage error (bad option, unknown job type, arguments that don't fit). See docs/cli.md.
"""

from __future__ import annotations

import logging

import click

from offload import __version__
from offload.cli._demo import demo
from offload.cli._enqueue import enqueue
from offload.cli._events import events
from offload.cli._jobs import jobs
from offload.cli._keys import keys
from offload.cli._migrate import migrate
from offload.cli._queues import kinds, queues
from offload.cli._relay import relay
from offload.cli._rules import rules
from offload.cli._server import hash_token_command, server
from offload.cli._stats import stats
from offload.cli._top import top
from offload.cli._worker import worker
from offload.cli._workflows import workflows


@click.group()
@click.version_option(__version__, "-V", "--version", prog_name="offload")
def main() -> None:
    """offload: background jobs on SQLite or PostgreSQL."""
    # The connection pool logs every failed connection attempt; without this, Python's
    # last-resort handler would print each one. The command's own error says it once.
    # Logging set up by a command (the worker's) or by the user's app still receives them.
    logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


main.add_command(worker)
main.add_command(relay)
main.add_command(server)
main.add_command(hash_token_command)
main.add_command(enqueue)
main.add_command(jobs)
main.add_command(workflows)
main.add_command(stats)
main.add_command(top)
main.add_command(rules)
main.add_command(queues)
main.add_command(kinds)
main.add_command(events)
main.add_command(migrate)
main.add_command(keys)
main.add_command(demo)

__all__ = ["main"]
