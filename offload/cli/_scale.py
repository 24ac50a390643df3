"""`offload scale`: how many workers (or slots) each queue needs to keep its lag under a
target, with the arithmetic written out (offload/app/_scaling.py).

    offload scale --target-lag 30s
    offload scale --target-lag 2m --slots 4 --queue emails --json

Rates are measured over `--window` (two samples of the store's event totals that far apart);
`--window 0` leaves them out and sizes for the backlog alone.
"""

from __future__ import annotations

import time

import click

from offload.app._scaling import RateMeter, queue_signals, recommend_all
from offload.cli._common import friendly_errors, json_option, opened_app, store_options
from offload.cli._output import print_json, table
from offload.cli._rules import parse_duration

WORKER_SEEN_WITHIN = 60.0


def _seconds(text: str, option: str, zero: bool = False) -> float:
    if zero and text.strip() in ("0", "0s"):
        return 0.0
    return parse_duration(text, option)


@click.command("scale")
@click.option(
    "--target-lag",
    metavar="DURATION",
    help="How long a job may wait before it starts: seconds, or e.g. 30s, 2m "
    "(default: the app's scaling.target_lag, 30s).",
)
@click.option(
    "--slots",
    "slots_per_worker",
    type=click.IntRange(1, 1000),
    help="Jobs one worker runs at once, its --concurrency (default: the app's "
    "scaling.slots_per_worker, 10).",
)
@click.option(
    "--window",
    default="5s",
    show_default=True,
    metavar="DURATION",
    help="Measure arrival and service rates over this long (0: leave them out).",
)
@click.option("-q", "--queue", "only", multiple=True, help="Only this queue (repeatable).")
@store_options
@json_option
@friendly_errors
def scale(
    target_lag: str | None,
    slots_per_worker: int | None,
    window: str,
    only: tuple[str, ...],
    app_path: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Recommend a worker count per queue for a target lag, and say why.

    \b
      offload scale --target-lag 30s
      offload scale --target-lag 2m --slots 4 --queue emails --json

    For each queue: needed rate = arrivals + waiting / target lag; slots = needed rate × mean
    run time; workers = slots / --slots, rounded up.
    """
    span = _seconds(window, "--window", zero=True)
    with opened_app(app_path, url) as app:
        store = app.store
        target = (
            app.scaling.target_lag if target_lag is None else _seconds(target_lag, "--target-lag")
        )
        slots_per_worker = slots_per_worker or app.scaling.slots_per_worker
        declared = {
            j.options_.queue for j in app.jobs.values() if not j.name.startswith("offload.")
        }
        rates = None
        if span > 0:
            meter = RateMeter()
            meter.sample(store)
            time.sleep(span)
            rates = meter.sample(store)
        signals = queue_signals(store, declared | set(only), rates, WORKER_SEEN_WITHIN)
    if only:
        signals = [s for s in signals if s.queue in only]
    found = recommend_all(signals, target, slots_per_worker)
    if as_json:
        print_json(
            [
                {**s.as_dict(), "recommended": r.as_dict()}
                for s, r in zip(signals, found, strict=True)
            ]
        )
        return
    if not found:
        click.echo("no queues", err=True)
        return
    rows = [
        [
            s.queue,
            s.depth,
            f"{s.oldest_age:.1f}s",
            "-" if s.arrival_rate is None else f"{s.arrival_rate:.3g}/s",
            "-" if s.service_rate is None else f"{s.service_rate:.3g}/s",
            "-" if s.run_seconds is None else f"{s.run_seconds:.3g}s",
            s.workers,
            r.slots,
            r.workers,
        ]
        for s, r in zip(signals, found, strict=True)
    ]
    headers = [
        "QUEUE",
        "WAITING",
        "OLDEST",
        "ARRIVING",
        "SERVED",
        "RUN",
        "LIVE",
        "SLOTS",
        "WORKERS",
    ]
    click.echo(table(headers, rows, numeric=[1, 6, 7, 8]))
    click.echo(f"\nFor a lag under {target:g}s with {slots_per_worker} slots per worker:")
    for r in found:
        click.echo(f"  {r.queue}:")
        for line in r.explanation:
            click.echo(f"    {line}")
