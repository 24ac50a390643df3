"""Turns the raw runs into medians, Markdown tables and a plot; describes the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench._config import OBAN_PYTHON, REDIS_PEERS
from bench.systems import BACKENDS, FACTORIES, PEERS

TITLES = {
    "enqueue": "Single enqueue: 20,000 jobs, one per call, one producer (jobs/s)",
    "bulk": "Bulk enqueue: 100,000 jobs with each system's bulk API (jobs/s)",
    "drain": "Drain: 20,000 queued no-op jobs that record their run (jobs/s)",
    "latency": "Pickup latency: idle workers, 200 jobs 20 ms apart (ms, start − enqueue)",
}
# Figures besides `value` whose median a summary keeps, per scenario.
FIGURES = {
    "latency": ("p50", "p95", "p99", "max"),
    "iteration": ("plain_us", "plain_ms", "default_us", "each_us"),
    "chain": ("plain_rate", "step_overhead_us"),
    "events": (
        "single_events_per_s", "bulk_events_per_s", "fanout_single_events_per_s",
        "fanout_single_jobs_per_s", "fanout_bulk_events_per_s", "fanout_bulk_jobs_per_s",
        "read_events_per_s",
    ),
}  # fmt: skip
IO_TARGET_SHARE = 0.75  # offload's io ≥ 75 % of the body's limit …
IO_TARGET_PEERS = 2.0  # … and ≥ 2× the best peer's io
LIBS = [
    "offload", "celery", "kombu", "redis", "rq", "dramatiq", "huey", "arq", "procrastinate",
    "pgqueuer", "asyncpg", "psycopg",
]  # fmt: skip


def brief(r: dict[str, Any]) -> str:
    if not r.get("ok"):
        return f"FAILED: {r.get('problem')}"
    if r["scenario"] == "latency":
        return f"p50 {r['p50']:.2f} ms  p95 {r['p95']:.2f}  p99 {r['p99']:.2f}  max {r['max']:.2f}"
    if r["scenario"] == "backlog":
        return f"claim rate at {r['size']:,} ÷ at 0 = {r['value']:.2f}"
    if r["scenario"] == "iteration":
        return (
            f"{r['default_us']:+,.2f} µs/item (cursor every 5 s), {r['each_us']:+,.1f} µs/item "
            f"(every item); the plain loop's job {r['plain_ms']:.0f} ms"
        )
    if r["scenario"] == "chain":
        return f"{r['value']:,.0f} steps/s in chains, {r['plain_rate']:,.0f} plain jobs/s"
    if r["scenario"] == "events" and "fanout_bulk_jobs_per_s" in r:
        return (
            f"publish {r['single_events_per_s']:,.0f}/s, publish_many "
            f"{r['bulk_events_per_s']:,.0f}/s, fan-out {r['fanout_single_jobs_per_s']:,.0f} and "
            f"{r['fanout_bulk_jobs_per_s']:,.0f} jobs/s"
        )
    if r["scenario"] == "events":
        return f"insert {r['single_events_per_s']:,.0f}/s, bulk {r['bulk_events_per_s']:,.0f}/s"
    return f"{r['value']:,.0f} jobs/s"


# --- the machine --------------------------------------------------------------------------
def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    versions = {}
    for lib in LIBS:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    versions["oban"] = _cmd(
        [OBAN_PYTHON, "-c", "import importlib.metadata as m; print(m.version('oban'))"]
    )
    import sqlite3

    import redis

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "oban_python": _cmd([OBAN_PYTHON, "--version"]),
        "sqlite": sqlite3.sqlite_version,
        "postgres": _cmd(["psql", "-h127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"]),
        "redis": redis.Redis.from_url(REDIS_PEERS).info("server").get("redis_version"),
        "load_at_end": os.getloadavg(),
        "versions": versions,
    }  # fmt: skip


def configs() -> dict[str, dict[str, str]]:
    from bench.systems import Offload

    out = {}
    for name, factory in FACTORIES.items():
        cls: Any = Offload("sqlite") if name.startswith("offload") else factory
        out[name] = {"backend": BACKENDS[name], "workers": cls.worker_config, "bulk": cls.bulk_api}
    return out


# --- medians ------------------------------------------------------------------------------
def summarize(raw: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario and system: the median of the runs, or the problems seen."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in raw:
        groups.setdefault((r["scenario"], r["system"]), []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for (scenario, system), runs in groups.items():
        if scenario == "backlog":
            runs = runs[-1:]  # a curve, run once: the latest one counts
        crashed = [r for r in runs if not r.get("ok") and _crash(r)]
        bad = [r for r in runs if not r.get("ok") and not _crash(r)]
        good = [r for r in runs if r.get("ok")]
        cell: dict[str, Any] = {"runs": len(runs), "ok": not bad and bool(good)}
        if crashed:
            cell["crashed"] = [str(r.get("problem"))[:300] for r in crashed]
        if bad or not good:
            cell["problem"] = "; ".join(sorted({str(r.get("problem")) for r in bad or crashed}))
        else:
            cell["value"] = statistics.median(r["value"] for r in good)
            cell["values"] = [r["value"] for r in good]
            for k in FIGURES.get(scenario, ()):
                values = [r[k] for r in good if r.get(k) is not None]
                if values:
                    cell[k] = statistics.median(values)
            if scenario == "backlog":
                cell["points"] = good[-1]["points"]
        out.setdefault(scenario, {})[system] = cell
    return out


def _crash(r: dict[str, Any]) -> bool:
    """A run that died (its driver, or the database under it), as opposed to one that ran and
    lost or duplicated jobs: it is left out of the median and listed under the table."""
    return str(r.get("problem", "")).startswith(("driver failed", "timed out"))


def _best_peer(cells: dict[str, Any], backend: str | None, lower: bool) -> tuple[str, float]:
    found = [
        (name, c["value"])
        for name, c in cells.items()
        if name in PEERS and c.get("ok") and (backend is None or BACKENDS[name] == backend)
    ]
    if not found:
        return "", 0.0
    return min(found, key=lambda x: x[1]) if lower else max(found, key=lambda x: x[1])


def _fmt(v: float | None, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    summary = doc["summary"]
    m = doc["machine"]
    lines = [
        f"Run {doc['started']}: {'quick (1 run per figure)' if doc['quick'] else 'full'}, "
        f"median of {doc['runs']} run(s); {m['nproc']} × {m['cpu']}, {m['ram_gib']} GiB; "
        f"Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgres']}, "
        f"Redis {m['redis']}. offload: {doc.get('offload_code', '?')}.",
        "",
    ]
    for scenario, title in TITLES.items():
        if scenario == "latency":  # io is reported beside drain, before latency
            lines += io_table(summary)
        cells = summary.get(scenario)
        if not cells:
            continue
        lower = scenario == "latency"
        best_name, best = _best_peer(cells, None, lower)
        lines += [f"### {title}", ""]
        if lower:
            lines += [
                "| system | backend | p50 | p95 | p99 | max | p50 ÷ best peer p50 | "
                "÷ best same-backend peer |",
                "|---|---|--:|--:|--:|--:|--:|--:|",
            ]
        else:
            lines += [
                "| system | backend | jobs/s | × best peer | × best same-backend peer | runs |",
                "|---|---|--:|--:|--:|---|",
            ]
        order = [n for n in FACTORIES if n in cells]
        for name in order:
            c = cells[name]
            backend = BACKENDS[name]
            _, same = _best_peer(cells, backend, lower)
            label = f"**{name}**" if name.startswith("offload") else name
            if not c.get("ok"):
                cols = 7 if lower else 4
                lines.append(f"| {label} | {backend} | ✗ {c.get('problem')} |" + " |" * cols)
                continue
            v = c["value"]
            r_best = f"{v / best:.2f}" if best else "—"
            r_same = f"{v / same:.2f}" if same else "—"
            if lower:
                lines.append(
                    f"| {label} | {backend} | {c['p50']:.2f} | {c['p95']:.2f} | {c['p99']:.2f} "
                    f"| {c['max']:.2f} | {r_best} | {r_same} |"
                )
            else:
                runs = ", ".join(f"{x:,.0f}" for x in c["values"])
                if c.get("crashed"):
                    runs += f" (+{len(c['crashed'])} crashed†)"
                lines.append(f"| {label} | {backend} | {v:,.0f} | {r_best} | {r_same} | {runs} |")
        lines += ["", f"Best peer: {best_name or '—'}.", ""]
        lines += _crashes(cells)
    lines += _baseline(summary)
    lines += _backlog(summary)
    lines += iteration_table(summary)
    lines += chain_table(summary)
    lines += events_table(summary)
    return "\n".join(lines) + "\n"


def _crashes(cells: dict[str, Any]) -> list[str]:
    lines = []
    for name in [n for n in FACTORIES if n in cells]:
        for problem in cells[name].get("crashed", []):
            lines += [f"† {name}: a run died and is left out: {problem}", ""]
    return lines


def _ratio(v: float | None, base: float | None) -> str:
    return f"{v / base:.2f}" if v and base else "—"


def _value(cell: dict[str, Any] | None) -> float | None:
    return cell.get("value") if cell and cell.get("ok") else None


def io_table(summary: dict[str, Any]) -> list[str]:
    """The `io` scenario beside drain: each system's jobs/s, as a share of the body's own
    limit (`loop-io`), against the best peer, and its drain figure; then the targets."""
    cells = summary.get("io", {})
    if not cells:
        return []
    limit = _value(cells.get("loop-io"))
    drains = summary.get("drain", {})
    best_name, best = _best_peer(cells, None, False)
    lines = [
        "### I/O: 20,000 queued jobs, each one Redis round trip (`INCR`, db 12) (jobs/s)",
        "",
        "| system | backend | jobs/s | ÷ the body's limit | × best peer "
        "| × best same-backend peer | drain jobs/s | io ÷ drain | runs |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for name in [n for n in FACTORIES if n in cells]:
        c = cells[name]
        backend = BACKENDS[name]
        label = f"**{name}**" if name.startswith("offload") else name
        if not c.get("ok"):
            lines.append(f"| {label} | {backend} | ✗ {c.get('problem')} |" + " |" * 6)
            continue
        v = c["value"]
        _, same = _best_peer(cells, backend, False)
        drain = _value(drains.get(name))
        runs = ", ".join(f"{x:,.0f}" for x in c["values"])
        lines.append(
            f"| {label} | {backend} | {v:,.0f} | {_ratio(v, limit)} | {_ratio(v, best)} | "
            f"{_ratio(v, same)} | {_fmt(drain)} | {_ratio(v, drain)} | {runs} |"
        )
    loop = cells.get("loop-io", {})
    if loop.get("ok"):
        lines += [
            "",
            f"The body's own limit: {limit:,.0f} jobs/s (the same body in a plain loop, no "
            f"queue, {loop.get('processes', 2)} processes; runs "
            + ", ".join(f"{x:,.0f}" for x in loop["values"])
            + f"). Best peer: {best_name or '—'}.",
        ]
    elif loop:
        lines += ["", f"The body's own limit: ✗ {loop.get('problem')}."]
    verdicts = io_verdicts(summary)
    if verdicts:
        lines += [
            "",
            "Target: offload ≥ 75 % of the limit and ≥ 2× the best peer: " + verdicts + ".",
        ]
    return [*lines, "", *_crashes(cells)]


def io_verdicts(summary: dict[str, Any]) -> str:
    """Each offload engine's `io` against its targets, in words ('' when nothing to judge)."""
    cells = summary.get("io", {})
    limit = _value(cells.get("loop-io"))
    _, best = _best_peer(cells, None, False)
    out = []
    for name in ("offload-sqlite", "offload-postgres"):
        v = _value(cells.get(name))
        if v is None:
            continue
        share = f"{v / limit:.0%} of the limit" if limit else "no limit measured"
        peers = f"{v / best:.2f}× the best peer" if best else "no peer measured"
        met = bool(limit and best and v >= IO_TARGET_SHARE * limit and v >= IO_TARGET_PEERS * best)
        out.append(f"{name} {share}, {peers} ({'met' if met else 'missed'})")
    return "; ".join(out)


def iteration_table(summary: dict[str, Any]) -> list[str]:
    """Checkpoint overhead of an iteration job per item, above a plain loop in one job."""
    cells = summary.get("iteration", {})
    if not cells:
        return []
    lines = [
        "### Iteration jobs: cost per item above a plain loop in one job (µs per item)",
        "",
        "| engine | the plain loop's job (ms, attempt to finish) | iteration job, cursor stored "
        "every 5 s (default) | cursor stored after every item | runs |",
        "|---|--:|--:|--:|---|",
    ]
    for name, c in cells.items():
        if not c.get("ok"):
            lines.append(f"| {name} | ✗ {c.get('problem')} | | | |")
            continue
        runs = ", ".join(f"{x:+.2f}" for x in c["values"])
        plain = c.get("plain_ms")
        lines.append(
            f"| {name} | {_fmt(plain)} | {c['default_us']:+,.2f} | {c['each_us']:+,.1f} | {runs} |"
        )
    lines += [
        "",
        "No peer measured here has resumable iteration jobs (a job's position stored for it to "
        "resume from): the figures are µs per item above a plain loop of the same items in one "
        "offload job, each job timed by the store from its attempt to its finish.",
    ]
    return [*lines, ""]


def chain_table(summary: dict[str, Any]) -> list[str]:
    """A chain step's cost against a plain job, offload and Celery's canvas chain."""
    cells = summary.get("chain", {})
    if not cells:
        return []
    peer = _value(cells.get("celery"))
    lines = [
        "### Chains: steps of 10-step chains against as many plain jobs, drained (jobs/s)",
        "",
        "| system | backend | chain steps jobs/s | plain jobs/s | chain ÷ plain "
        "| µs per step above a plain job | chain × Celery's chain | runs |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for name in [n for n in FACTORIES if n in cells]:
        c = cells[name]
        label = f"**{name}**" if name.startswith("offload") else name
        if not c.get("ok"):
            lines.append(f"| {label} | {BACKENDS[name]} | ✗ {c.get('problem')} |" + " |" * 5)
            continue
        v, plain = c["value"], c.get("plain_rate")
        runs = ", ".join(f"{x:,.0f}" for x in c["values"])
        lines.append(
            f"| {label} | {BACKENDS[name]} | {v:,.0f} | {_fmt(plain)} | {_ratio(v, plain)} | "
            f"{_fmt(c.get('step_overhead_us'), 1)} | {_ratio(v, peer)} | {runs} |"
        )
    return [*lines, "", *_crashes(cells)]


def events_table(summary: dict[str, Any]) -> list[str]:
    """Event publishing (single, bulk, fan-out to 2 subscriptions) against a PostgreSQL peer's
    plain inserts, the nearest thing a peer has to a publish."""
    cells = summary.get("events", {})
    if not cells:
        return []
    peers = [n for n in ("pgqueuer", "procrastinate") if _value(cells.get(n))]
    lines = [
        "### Events: publish, one per call and 1,000 per call, and fan-out to 2 subscriptions",
        "",
        "| system | publish, 1 per call (events/s) | publish_many, 1,000 per call (events/s) "
        "| fan-out, 1 per call (jobs/s) | fan-out, 1,000 per call (jobs/s) "
        "| a group reading (events/s) | single ÷ best peer | bulk ÷ best peer |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    best_single = max((cells[n].get("single_events_per_s") or 0 for n in peers), default=0)
    best_bulk = max((cells[n].get("bulk_events_per_s") or 0 for n in peers), default=0)
    for name in [n for n in FACTORIES if n in cells]:
        c = cells[name]
        label = f"**{name}**" if name.startswith("offload") else f"{name} (plain inserts)"
        if not c.get("ok"):
            lines.append(f"| {label} | ✗ {c.get('problem')} |" + " |" * 6)
            continue
        single, bulk = c.get("single_events_per_s"), c.get("bulk_events_per_s")
        lines.append(
            f"| {label} | {_fmt(single)} | {_fmt(bulk)} | "
            f"{_fmt(c.get('fanout_single_jobs_per_s'))} | {_fmt(c.get('fanout_bulk_jobs_per_s'))} "
            f"| {_fmt(c.get('read_events_per_s'))} | {_ratio(single, best_single)} "
            f"| {_ratio(bulk, best_bulk)} |"
        )
    lines += [
        "",
        "A peer has no topics: its row is its single and bulk enqueue of plain jobs (1,000 per "
        "call), what its users publish with; fan-out there is one such insert per subscriber.",
    ]
    return [*lines, "", *_crashes(cells)]


def _baseline(summary: dict[str, Any]) -> list[str]:
    loops = summary.get("loop", {})
    acks = summary.get("drain-ack", {})
    if not loops and not acks:
        return []
    lines = [
        "### Against the bare SQL loop (100,000 no-op jobs, nothing recorded, counted at the ack)",
        "",
        "| engine | bare loop, 1 process (jobs/s) | offload drain (jobs/s) | offload ÷ loop |",
        "|---|--:|--:|--:|",
    ]
    for engine in ("sqlite", "postgres"):
        loop = loops.get(f"loop-{engine}", {})
        ack = acks.get(f"offload-{engine}", {})
        lv = loop.get("value") if loop.get("ok") else None
        av = ack.get("value") if ack.get("ok") else None
        ratio = f"{av / lv:.2f}" if lv and av else "—"
        lv_s = _fmt(lv) if loop.get("ok", True) else f"✗ {loop.get('problem')}"
        av_s = _fmt(av) if ack.get("ok", True) else f"✗ {ack.get('problem')}"
        lines.append(f"| {engine} | {lv_s} | {av_s} | {ratio} |")
    return [*lines, ""]


def _backlog(summary: dict[str, Any]) -> list[str]:
    cells = summary.get("backlog", {})
    if not cells:
        return []
    lines = [
        "### Backlog: rates and worker RSS with the backlog in place",
        "",
        "| engine | backlog | fill (bulk) jobs/s | single enqueue jobs/s | bulk enqueue jobs/s "
        "| claim rate jobs/s | max worker RSS MiB | sum RSS MiB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, c in cells.items():
        if not c.get("ok"):
            lines.append(f"| {name} | ✗ {c.get('problem')} | | | | | | |")
            continue
        for p in c["points"]:
            lines.append(
                f"| {name} | {p['level']:,} | {_fmt(p.get('fill_rate'))} | "
                f"{_fmt(p['single_rate'])} | {_fmt(p['bulk_rate'])} | {_fmt(p['claim_rate'])} | "
                f"{p['rss_max_mb']:.0f} | {p['rss_sum_mb']:.0f} |"
            )
        lines.append(f"| {name} | claim rate at largest ÷ at 0 | {c['value']:.2f} | | | | | |")
    return [*lines, ""]


def update_readme(table: str, readme: Path) -> None:
    """Put the latest tables between the README's TABLE markers."""
    text = readme.read_text()
    begin = text.index("<!-- TABLE:BEGIN")
    begin = text.index("-->", begin) + 3
    end = text.index("<!-- TABLE:END -->")
    readme.write_text(text[:begin] + "\n" + table + "\n" + text[end:])


# --- the plot -----------------------------------------------------------------------------
def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = doc["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    colors = {"sqlite": "#2a9d8f", "postgres": "#264653", "redis": "#e76f51"}

    ax = axes[0]
    drain, io = summary.get("drain", {}), summary.get("io", {})
    names = [n for n in FACTORIES if n in drain or n in io]
    shown = [(s, c) for s, c in (("drain", drain), ("io", io)) if c]
    height = 0.8 / max(len(shown), 1)
    top = 1.0
    for k, (scenario, cells) in enumerate(shown):
        ys = [y + (k - (len(shown) - 1) / 2) * height for y in range(len(names))]
        vals = [_value(cells.get(n)) or 0 for n in names]
        top = max([top, *vals])
        bars = ax.barh(
            ys,
            vals,
            height=height,
            color=[colors[BACKENDS[n]] for n in names],
            hatch="//" if scenario == "io" else None,
            edgecolor="white",
        )
        for bar, n in zip(bars, names, strict=True):
            c = cells.get(n)
            if c is None:
                continue
            label = f"{c['value']:,.0f}" if c.get("ok") else "✗ " + str(c.get("problem"))
            y = bar.get_y() + bar.get_height() / 2
            ax.text(bar.get_width(), y, f" {scenario} {label}", va="center", fontsize=7)
    limit = _value(io.get("loop-io"))
    if limit:
        ax.axvline(limit, color="black", linestyle="--", linewidth=1)
        where = ax.get_xaxis_transform()  # x in data, y in axes fractions
        ax.text(limit, 0.02, f" io limit {limit:,.0f}", transform=where, fontsize=7, rotation=90)
        top = max(top, limit)
    ax.set_yticks(list(range(len(names))), names)
    ax.invert_yaxis()
    ax.set_xlabel("jobs/s (higher is better)")
    title = "Drain: 20,000 no-op jobs" + (
        " / io: one Redis round trip each (hatched)" if io else ""
    )
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, top * 1.35)

    lat = summary.get("latency", {})
    names = [n for n in FACTORIES if n in lat and lat[n].get("ok")]
    ax = axes[1]
    if not names:
        ax.text(0.5, 0.5, "no latency figures in this run", ha="center", transform=ax.transAxes)
    y = range(len(names))
    for key, marker in (("p50", "o"), ("p95", "s"), ("p99", "^")):
        ax.scatter([lat[n][key] for n in names], list(y), marker=marker, label=key, zorder=3)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    if names:
        ax.set_xscale("log")
        ax.legend()
    ax.set_xlabel("ms, log scale (lower is better)")
    ax.set_title("Pickup latency: idle worker, 200 jobs 20 ms apart")
    ax.grid(axis="x", which="both", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    fig.legend(handles, list(colors), loc="lower center", ncol=3, title="backend")
    kind = "quick, 1 run" if doc["quick"] else f"median of {doc['runs']}"
    started = doc["started"].split(" + ")[0] + (" + reruns" if " + " in doc["started"] else "")
    fig.suptitle(f"offload vs peers — {started} ({kind}); {doc['machine']['nproc']} vCPUs")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
