"""`offload relay`: move jobs staged in an application database's outbox to the store."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click

from offload._redact import mask_logging
from offload.app._outbox import Relay
from offload.cli._common import configure_logging, friendly_errors, url_option
from offload.cli._load import load_app
from offload.cli._output import safe_url
from offload.store import verify_store


@click.command("relay")
@click.argument("app_path", metavar="APP", required=False)
@click.option("--source", required=True, help="URL of the application database with the outbox.")
@url_option
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds between polls when nothing is staged.",
)
@click.option("--once", is_flag=True, help="Relay what is staged now, then exit.")
@friendly_errors
def relay(
    app_path: str | None, source: str, url: str | None, batch: int, interval: float, once: bool
) -> None:
    """Relay staged jobs from SOURCE's outbox table to the job store, at least once.

    Each staged job carries a unique key, so a job relayed twice is enqueued once.
    """
    configure_logging(logging.INFO)  # text, or JSON with --log-format json
    mask_logging()  # a URL in any log line shows without its password
    app = load_app(app_path, url)
    verify_store(app.config.url)  # a damaged file: one line and exit 3
    r = Relay(app, source, batch)
    if once:
        total = 0
        while moved := r.run_once():
            total += moved
        click.echo(f"relayed {total} jobs")
        r.close()
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        r.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(f"relaying from {safe_url(source)} to {safe_url(app.config.url)}", err=True)
    r.run(interval)
    r.close()
    click.echo(f"relayed {r.relayed} jobs", err=True)
