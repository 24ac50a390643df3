"""`offload events …`: topics, consumer groups and replay (docs/events.md).

    offload events list --app myapp:app
    offload events read orders --partition 2 --after 41 --limit 10
    offload events replay orders --group analytics --from-offset 0
    offload events replay orders --group send-receipt --since 2h

Replay resets a consumer group's offsets (in every partition, or those named), or gives a
subscription one new job per event from there on; the events then flow again.
"""

from __future__ import annotations

import json
from typing import Any

import click

from offload.cli._common import (
    Failure,
    UsageFailure,
    friendly_errors,
    json_option,
    opened_app,
    store_options,
)
from offload.cli._output import iso, print_json, table, terminal_width
from offload.cli._when import parse_when
from offload.events import Topic, find_topic
from offload.events import replay as run_replay
from offload.events._event import Event


@click.group("events", help="Topics, consumer groups and replay (docs/events.md).")
def events() -> None:
    pass


def _topic(app: Any, name: str) -> Topic:
    topic = find_topic(app, name)
    if topic is None:
        known = ", ".join(sorted({s.name for s in app.store.topic_specs()} | set(app.topics)))
        raise Failure(f"no topic named {name!r} in the store (topics: {known or 'none'})")
    return topic


@events.command("list")
@store_options
@json_option
@friendly_errors
def list_(app_path: str | None, url: str | None, as_json: bool) -> None:
    """List topics with their partitions' heads, and each consumer group's lag."""
    with opened_app(app_path, url) as app:
        store = app.store
        specs = store.topic_specs()
        parts = store.partition_list()
        groups = store.group_positions()
    out: list[dict[str, Any]] = []
    for spec in specs:
        heads = {p.part: p.head for p in parts if p.topic == spec.name}
        lags: dict[str, int] = {}
        for g in groups:
            if g.topic == spec.name:
                lags[g.group] = lags.get(g.group, 0) + g.lag
        out.append(
            {
                "topic": spec.name,
                "partitions": spec.partitions,
                "events": sum(p.count for p in parts if p.topic == spec.name),
                "heads": heads,
                "retention_seconds": spec.retention_seconds,
                "max_events": spec.retention_events,
                "groups": lags,
            }
        )
    if as_json:
        print_json(out)
        return
    if not out:
        click.echo("no topics", err=True)
        return
    rows = [
        [
            o["topic"],
            o["partitions"],
            o["events"],
            sum(o["heads"].values()),
            ", ".join(f"{g} (lag {n})" for g, n in sorted(o["groups"].items())) or "-",
        ]
        for o in out
    ]
    headers = ["TOPIC", "PARTITIONS", "KEPT", "PUBLISHED", "GROUPS"]
    click.echo(table(headers, rows, numeric=[1, 2, 3], width=terminal_width()))


@events.command("read")
@click.argument("topic")
@click.option("--partition", "-p", type=int, required=True, help="The partition to read.")
@click.option("--after", type=int, default=-1, show_default=True, help="Events above this offset.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@store_options
@friendly_errors
def read(
    topic: str, partition: int, after: int, limit: int, app_path: str | None, url: str | None
) -> None:
    """Print a partition's events from an offset on, one JSON object a line."""
    with opened_app(app_path, url) as app:
        t = _topic(app, topic)
        if not 0 <= partition < t.partitions:
            raise UsageFailure(f"topic {topic!r} has partitions 0..{t.partitions - 1}")
        found = t.read(partition, after=after, limit=limit)
    for e in found:
        click.echo(json.dumps(_event_json(e), separators=(",", ":")))


def _event_json(e: Event) -> dict[str, Any]:
    data = e.to_json()
    data["published_at"] = iso(e.published_at.timestamp())
    return data


@events.command("replay")
@click.argument("topic")
@click.option("--group", required=True, help="A consumer group, or a subscription's name.")
@click.option("--from-offset", "from_offset", type=click.IntRange(0), help="Start offset.")
@click.option("--since", help="Start time: 2h (ago), or 2026-12-07T09:30Z.")
@click.option("--partition", "-p", "partitions", type=int, multiple=True, help="Only these.")
@store_options
@json_option
@friendly_errors
def replay(
    topic: str,
    group: str,
    from_offset: int | None,
    since: str | None,
    partitions: tuple[int, ...],
    app_path: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Replay a topic for a consumer group (its offsets reset) or a subscription (one new job
    per event; needs --app, which declares it), from an offset or a time."""
    if (from_offset is None) == (since is None):
        raise UsageFailure("give --from-offset N or --since TIME (one of them)")
    with opened_app(app_path, url) as app:
        t = _topic(app, topic)
        when = None if since is None else parse_when(since, app.store.now(), "--since")
        starts = run_replay(
            t,
            group,
            from_offset=from_offset,
            since=when,
            partitions=partitions or None,
        )
    if as_json:
        print_json({"topic": topic, "group": group, "from": starts})
        return
    shown = ", ".join(f"{p}: {o}" for p, o in sorted(starts.items()))
    click.echo(f"replaying {topic} for {group} from offsets {{{shown}}}")
