"""Numbers and chart geometry the dashboard shows, computed per request from the store.

Throughput and failures over time come from `job_finished_since_each` at the bucket edges:
how many jobs completed (or ended dead, or failed to be retried) after each edge, so a bucket is
the difference of two edges. The store keeps these ends by 10-second span for eight days, so
jobs pruned or retried since still count where they ended, and reading them costs the same
however many jobs the store holds. Wait and run times come from a sample of
the newest completed jobs; SLO attainment per job type from the store (`job_slo_attainment`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from offload._states import STATES
from offload._time import readable
from offload.server._catalog import queue_rows
from offload.store._contract import JobFilter, JobRecord, Store
from offload.store._workflows import WorkflowFilter

if TYPE_CHECKING:
    from offload.server._context import Server

# range name: (seconds shown, buckets, label format)
RANGES: dict[str, tuple[float, int, str]] = {
    "1h": (3600.0, 30, "%H:%M"),
    "24h": (86400.0, 24, "%H:%M"),
    "7d": (7 * 86400.0, 28, "%a %H:%M"),
}
SAMPLE = 500
SLO_WINDOW = 3600.0
CHART_W, CHART_H, LEFT, BOTTOM, TOP = 760, 210, 44, 26, 10


def when(ts: float | None) -> str:
    """A readable UTC time."""
    if ts is None:
        return "—"
    return readable(ts)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = abs(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "—"
    delta = now - ts
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def _nice(value: float) -> int:
    """A round axis maximum at or above `value`."""
    if value <= 4:
        return 4
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        top = step * magnitude
        if top >= value:
            return int(math.ceil(top))
    return int(value)


def chart(edges: list[float], completed: list[int], failed: list[int], fmt: str) -> dict[str, Any]:
    """Bars for an SVG chart: completed below, failed stacked on top."""
    n = len(completed)
    peak = _nice(max((c + f for c, f in zip(completed, failed, strict=True)), default=0))
    inner_w = CHART_W - LEFT - 8
    inner_h = CHART_H - BOTTOM - TOP
    slot = inner_w / max(n, 1)
    bar_w = max(slot * 0.72, 1.0)
    bars = []
    for i in range(n):
        x = LEFT + i * slot + (slot - bar_w) / 2
        h_ok = inner_h * completed[i] / peak
        h_bad = inner_h * failed[i] / peak
        base = TOP + inner_h
        label = (
            f"{_label(edges[i], fmt)}–{_label(edges[i + 1], fmt)}: "
            f"{completed[i]} completed, {failed[i]} failed"
        )
        bars.append(
            {
                "x": round(x, 1),
                "w": round(bar_w, 1),
                "ok_y": round(base - h_ok, 1),
                "ok_h": round(h_ok, 1),
                "bad_y": round(base - h_ok - h_bad, 1),
                "bad_h": round(h_bad, 1),
                "title": label,
            }
        )
    ticks = [
        {"y": round(TOP + inner_h - inner_h * f, 1), "label": f"{peak * f:g}"}
        for f in (0.0, 0.5, 1.0)
    ]
    xlabels = [
        {"x": round(LEFT + i * slot, 1), "label": _label(edges[i], fmt), "anchor": anchor}
        for i, anchor in ((0, "start"), (n // 2, "middle"), (n, "end"))
    ]
    return {
        "w": CHART_W,
        "h": CHART_H,
        "left": LEFT,
        "right": CHART_W - 8,
        "bars": bars,
        "ticks": ticks,
        "xlabels": xlabels,
        "axis_y": TOP + inner_h,
        "label_y": CHART_H - 6,
    }


def _label(ts: float, fmt: str) -> str:
    return readable(ts, fmt)


def slo_rows(server: Server, now: float) -> list[dict[str, Any]]:
    """SLO attainment over the last hour per job type with an SLO (as the store reports it),
    with the type's queue and SLO as declared here (blank for kinds declared elsewhere)."""
    rows = []
    for s in server.app.store.job_slo_attainment(now - SLO_WINDOW):
        declared = server.app.jobs.get(s.kind)
        external = server.config.external(s.kind)
        queue = declared.options_.queue if declared else external.queue if external else None
        rows.append(
            {
                "kind": s.kind,
                "queue": queue,
                "slo": declared.options_.slo if declared else None,
                "started": s.started,
                "on_time": s.on_time,
                "share": s.share,
                "late_avg": s.late_avg,
                "late_max": s.late_max,
            }
        )
    return sorted(rows, key=lambda r: (r["share"], r["queue"] or "", r["kind"]))


def overview(server: Server, span: str) -> dict[str, Any]:
    """Everything the overview page shows, in one pass over the store."""
    store = server.app.store
    now = store.now()
    total, buckets, fmt = RANGES[span]
    step = total / buckets
    edges = [now - total + i * step for i in range(buckets + 1)]
    since = store.job_finished_since_each(edges[:-1]) + [
        {"completed": 0, "dead": 0, "retryable": 0}
    ]
    completed, failed = [], []
    for i in range(buckets):
        a, b = since[i], since[i + 1]
        completed.append(max(a.get("completed", 0) - b.get("completed", 0), 0))
        failed.append(
            max(a.get("dead", 0) - b.get("dead", 0), 0)
            + max(a.get("retryable", 0) - b.get("retryable", 0), 0)
        )
    last5 = store.job_finished_since(now - 300)
    queues = queue_rows(server)
    totals = dict.fromkeys(STATES, 0)
    for q in queues:
        for state, n in q["counts"].items():
            totals[state] += n
    deepest = max((q["depth"] for q in queues), default=0)
    for q in queues:
        q["bar"] = 0 if not deepest else round(100 * q["depth"] / deepest, 1)
    sample = store.job_list(JobFilter(states=["completed"], limit=SAMPLE))
    waits = [
        max(r.attempted_at - r.scheduled_at, 0.0) for r in sample if r.attempted_at is not None
    ]
    runs = [
        max(r.finished_at - r.attempted_at, 0.0)
        for r in sample
        if r.attempted_at is not None and r.finished_at is not None
    ]
    within = [
        {
            "limit": limit,
            "share": (sum(1 for w in waits if w <= limit) / len(waits)) if waits else None,
        }
        for limit in (1.0, 10.0, 60.0)
    ]
    return {
        "now": now,
        "span": span,
        "ranges": list(RANGES),
        "chart": chart(edges, completed, failed, fmt),
        "sum_completed": sum(completed),
        "sum_failed": sum(failed),
        "per_minute": last5.get("completed", 0) / 5,
        "totals": totals,
        "queues": queues,
        "workers_alive": len(store.worker_list(server.seen_within)),
        "sample_size": len(waits),
        "wait_p50": _percentile(waits, 0.5),
        "wait_p95": _percentile(waits, 0.95),
        "run_p50": _percentile(runs, 0.5),
        "run_p95": _percentile(runs, 0.95),
        "within": within,
        "slo": slo_rows(server, now),
        "failures": store.job_list(JobFilter(states=["dead", "retryable"], limit=8)),
        "alerts_firing": sorted(s.name for s in store.alert_states() if s.firing),
        # Sagas whose undo job ended dead or cancelled: an operator must look (workflows.md).
        "stuck": store.workflow_list(WorkflowFilter(states=["stuck"], limit=8)),
        "stuck_count": store.workflow_counts().get("stuck", 0),
    }


def job_tree(store: Store, record: JobRecord, limit: int = 200) -> list[dict[str, Any]]:
    """The jobs caused by the job's root, as rows in depth-first order with their depth (the
    job page's tree); empty when the job caused none and was caused by none."""
    rows = store.job_tree(record.root_id or record.id, limit)
    if len(rows) < 2:
        return []
    children: dict[int | None, list[tuple[int, str, str]]] = defaultdict(list)
    known = {r[0] for r in rows}
    for job_id, parent, kind, state in rows:
        children[parent if parent in known else None].append((job_id, kind, state))
    out: list[dict[str, Any]] = []
    todo = [(0, n) for n in reversed(children[None])]
    while todo:
        depth, (job_id, kind, state) = todo.pop()
        out.append({"id": job_id, "kind": kind, "state": state, "depth": depth})
        todo += [(depth + 1, n) for n in reversed(children.get(job_id, []))]
    return out


def workers(server: Server) -> dict[str, Any]:
    """Live workers and the jobs each one runs (grouped by lease owner)."""
    store = server.app.store
    alive = store.worker_list(server.seen_within)
    running = store.job_list(JobFilter(states=["running"], limit=500))
    by_owner: dict[str, list[JobRecord]] = defaultdict(list)
    for r in running:
        by_owner[r.lease_owner or "?"].append(r)
    known = {w.id for w in alive}
    orphans = [r for owner, rs in by_owner.items() if owner not in known for r in rs]
    return {
        "workers": sorted(alive, key=lambda w: w.id),
        "running": by_owner,
        "orphans": orphans,
        "now": store.now(),
        "seen_within": server.seen_within,
    }


_ERROR_LABELS = {
    "crash": "worker lost",
    "throttled": "throttled (no attempt used)",
    "version": "newer version (no attempt used)",
    "omitted": "errors left out",
}


def timeline(record: JobRecord) -> list[dict[str, Any]]:
    """The job's life as dated events, oldest first."""
    events: list[dict[str, Any]] = [{"at": record.inserted_at, "what": "enqueued", "kind": "info"}]
    if record.scheduled_at > record.inserted_at + 0.5:
        events.append({"at": record.scheduled_at, "what": "due", "kind": "info"})
    for e in record.errors:
        at = e.get("at")
        if isinstance(at, (int, float)):
            label = _ERROR_LABELS.get(str(e.get("kind")), "attempt failed")
            events.append(
                {"at": float(at), "what": f"{label}: {e.get('error', '')}", "kind": "bad"}
            )
    if record.attempted_at is not None:
        events.append(
            {"at": record.attempted_at, "what": f"attempt {record.attempt} started", "kind": "info"}
        )
    if record.finished_at is not None:
        kind = "good" if record.state == "completed" else "bad"
        events.append({"at": record.finished_at, "what": record.state, "kind": kind})
    return sorted(events, key=lambda e: e["at"])
