"""Queues and kinds as the API and the dashboard show them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offload._states import STATES
from offload.store._pauses import KIND, QUEUE

if TYPE_CHECKING:
    from offload.server._context import Server


def queue_rows(server: Server) -> list[dict[str, Any]]:
    """Every queue with jobs or a declared kind: counts by state, depth, the age of its oldest
    waiting job (None: none waits), live workers."""
    store = server.app.store
    counts: dict[str, dict[str, int]] = {}
    for name in {j.options_.queue for j in server.app.jobs.values()} | {
        k.queue for k in server.config.external_kinds
    }:
        counts[name] = dict.fromkeys(STATES, 0)
    for row in store.job_counts():
        counts.setdefault(row.queue, dict.fromkeys(STATES, 0))[row.state] = row.count
    paused = {p.name for p in store.pause_list() if p.scope == QUEUE}
    for name in paused:
        counts.setdefault(name, dict.fromkeys(STATES, 0))
    workers = store.worker_list(server.seen_within)
    now = store.now()
    heads = store.queue_oldest([name for name, c in counts.items() if c["available"]])
    return [
        {
            "name": name,
            "depth": c["available"],
            "oldest": max(now - heads[name], 0.0) if name in heads else None,
            "counts": c,
            "workers": sum(1 for w in workers if name in w.queues),
            "paused": name in paused,
        }
        for name, c in sorted(counts.items())
    ]


def paused_kinds(server: Server) -> frozenset[str]:
    """The kinds paused now (a read of the store: call it off the event loop)."""
    return frozenset(p.name for p in server.app.store.pause_list() if p.scope == KIND)


def kind_rows(server: Server, paused: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Declared and external kinds, each marked `paused` when it is in `paused`; paused kinds
    that neither declares come last, marked undeclared."""
    rows: list[dict[str, Any]] = []
    for name, jt in sorted(server.app.jobs.items()):
        opts = jt.options_
        rows.append(
            {
                "name": name,
                "queue": opts.queue,
                "declared": True,
                "priority": opts.priority,
                "max_attempts": opts.max_attempts,
                "delivery": opts.delivery,
                "timeout": opts.timeout,
                "cron": jt.cron,
                "version": jt.version,
                "parameters": [
                    {
                        "name": p.name,
                        "required": p.name in jt.signature.required,
                        "annotation": _annotation(jt.signature.hints.get(p.name)),
                    }
                    for p in jt.signature.sig.parameters.values()
                ],
            }
        )
    for kind in server.config.external_kinds:
        if kind.name in server.app.jobs:
            continue
        rows.append(
            {
                "name": kind.name,
                "queue": kind.queue,
                "declared": False,
                "priority": kind.priority,
                "max_attempts": kind.max_attempts,
                "delivery": "at_least_once",
                "timeout": kind.timeout,
                "cron": None,
                "parameters": [],
            }
        )
    known = {r["name"] for r in rows}
    for name in sorted(paused - known):
        rows.append(
            {
                "name": name,
                "queue": "",
                "declared": False,
                "timeout": None,
                "cron": None,
                "parameters": [],
            }
        )
    for r in rows:
        r["paused"] = r["name"] in paused
    return rows


def _annotation(hint: Any) -> str | None:
    if hint is None:
        return None
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
