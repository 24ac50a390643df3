"""The bench's report logic (bench/report.py, bench/__main__.py's plan): medians kept per
scenario, the io table against the body's limit and its targets, the feature tables, and which
steps a run plans. Pure functions of made-up runs: nothing is measured here."""

from __future__ import annotations

import argparse
from typing import Any

from bench import report
from bench.__main__ import _plan


def run(system: str, scenario: str, value: float | None, **extra: Any) -> dict[str, Any]:
    ok = extra.pop("ok", value is not None)
    return {"system": system, "scenario": scenario, "ok": ok, "value": value, **extra}


def doc(raw: list[dict[str, Any]]) -> dict[str, Any]:
    machine = {"nproc": 2, "cpu": "cpu", "ram_gib": 1, "python": "3", "sqlite": "3",
               "postgres": "15", "redis": "7"}  # fmt: skip
    return {"started": "t", "quick": True, "runs": 1, "machine": machine,
            "summary": report.summarize(raw)}  # fmt: skip


def row(lines: list[str], start: str) -> list[str]:
    [found] = [line for line in lines if line.startswith(start)]
    return [cell.strip() for cell in found.strip("|").split("|")]


def test_summary_keeps_the_median_of_each_scenarios_figures() -> None:
    raw = [
        run("offload-sqlite", "iteration", 3.0, plain_us=0.1, default_us=3.0, each_us=90.0),
        run("offload-sqlite", "iteration", 5.0, plain_us=0.3, default_us=5.0, each_us=70.0),
        run("offload-sqlite", "iteration", 4.0, plain_us=0.2, default_us=4.0, each_us=80.0),
    ]
    cell = report.summarize(raw)["iteration"]["offload-sqlite"]
    assert (cell["value"], cell["plain_us"], cell["default_us"], cell["each_us"]) == (
        4.0,
        0.2,
        4.0,
        80.0,
    )


def test_io_rows_set_each_system_against_the_limit_the_best_peer_and_its_drain() -> None:
    raw = [
        run("loop-io", "io", 10_000.0, processes=2),
        run("offload-sqlite", "io", 8_000.0),
        run("offload-sqlite", "drain", 20_000.0),
        run("huey", "io", 4_000.0),
        run("celery", "io", 2_000.0),
        run("rq", "io", None, problem="3 lost"),
    ]
    lines = report.io_table(doc(raw)["summary"])
    assert row(lines, "| **offload-sqlite**")[2:8] == [
        "8,000",
        "0.80",
        "2.00",
        "—",
        "20,000",
        "0.40",
    ]
    assert row(lines, "| huey")[2:5] == ["4,000", "0.40", "1.00"]
    assert "✗ 3 lost" in row(lines, "| rq")
    text = "\n".join(lines)
    assert "The body's own limit: 10,000 jobs/s" in text
    assert "2 processes" in text
    assert "Best peer: huey." in text
    assert "offload-sqlite 80% of the limit, 2.00× the best peer (met)" in text


def test_io_targets_need_both_the_share_of_the_limit_and_twice_the_best_peer() -> None:
    def verdict(offload: float, peer: float) -> str:
        raw = [
            run("loop-io", "io", 10_000.0),
            run("offload-postgres", "io", offload),
            run("pgqueuer", "io", peer),
        ]
        return report.io_verdicts(report.summarize(raw))

    assert verdict(7_600, 3_000).endswith("(met)")
    assert verdict(7_400, 3_000).endswith("(missed)")  # 74 % of the limit
    assert verdict(7_600, 3_900).endswith("(missed)")  # 1.95× the best peer
    raw = [run("offload-sqlite", "io", 9_000.0), run("huey", "io", 1_000.0)]
    assert report.io_verdicts(report.summarize(raw)).endswith("no limit measured, 9.00× the "
                                                             "best peer (missed)")  # fmt: skip


def test_io_is_reported_beside_drain_before_latency() -> None:
    raw = [
        run("offload-sqlite", "drain", 20_000.0),
        run("loop-io", "io", 10_000.0),
        run("offload-sqlite", "io", 8_000.0),
        run("offload-sqlite", "latency", 1.0, p50=1.0, p95=2.0, p99=3.0, max=4.0),
    ]
    text = report.markdown(doc(raw))
    assert text.index("### Drain") < text.index("### I/O") < text.index("### Pickup latency")


def test_feature_tables_show_offload_beside_the_peer_that_has_the_feature() -> None:
    raw = [
        run("offload-sqlite", "iteration", 4.0, plain_ms=12.0, default_us=4.0, each_us=80.0),
        run("offload-postgres", "iteration", None, problem="iterate ended dead"),
        run("offload-sqlite", "chain", 5_000.0, plain_rate=10_000.0, step_overhead_us=100.0),
        run("celery", "chain", 1_000.0, plain_rate=2_000.0, step_overhead_us=500.0),
        run("offload-postgres", "events", 20_000.0, single_events_per_s=300.0,
            bulk_events_per_s=20_000.0, fanout_single_jobs_per_s=700.0,
            fanout_bulk_jobs_per_s=8_000.0, read_events_per_s=36_000.0),
        run("pgqueuer", "events", 40_000.0, single_events_per_s=2_000.0,
            bulk_events_per_s=40_000.0),
    ]  # fmt: skip
    summary = doc(raw)["summary"]
    iteration = report.iteration_table(summary)
    assert row(iteration, "| offload-sqlite")[:4] == ["offload-sqlite", "12", "+4.00", "+80.0"]
    assert "✗ iterate ended dead" in row(iteration, "| offload-postgres")
    chain = report.chain_table(summary)
    assert row(chain, "| **offload-sqlite**")[2:7] == ["5,000", "10,000", "0.50", "100.0", "5.00"]
    assert row(chain, "| celery")[2:7] == ["1,000", "2,000", "0.50", "500.0", "1.00"]
    events = report.events_table(summary)
    assert row(events, "| **offload-postgres**")[1:] == [
        "300", "20,000", "700", "8,000", "36,000", "0.15", "0.50"
    ]  # fmt: skip
    assert row(events, "| pgqueuer (plain inserts)")[1:3] == ["2,000", "40,000"]


def test_feature_tables_are_left_out_of_a_run_without_them() -> None:
    summary = report.summarize([run("offload-sqlite", "drain", 1.0)])
    assert report.io_table(summary) == []
    assert report.iteration_table(summary) == []
    assert report.chain_table(summary) == []
    assert report.events_table(summary) == []


def plan(scenarios: str, systems: str) -> list[tuple[str, str]]:
    args = argparse.Namespace(
        systems=systems, scenarios=scenarios, backlog=False, quick=True, loop_batch=500,
        backlog_size=None,
    )  # fmt: skip
    return [(system, scenario) for system, scenario, _, _ in _plan(args)]


def test_io_plans_the_limit_once_and_every_system() -> None:
    assert plan("io", "offload-sqlite,rq") == [
        ("loop-io", "io"),
        ("offload-sqlite", "io"),
        ("rq", "io"),
    ]


def test_feature_scenarios_plan_offload_and_only_the_peers_that_have_the_feature() -> None:
    systems = "offload-sqlite,offload-postgres,celery,rq,pgqueuer,procrastinate"
    assert plan("iteration,chain,events", systems) == [
        ("offload-sqlite", "iteration"),
        ("offload-postgres", "iteration"),
        ("offload-sqlite", "chain"),
        ("offload-postgres", "chain"),
        ("celery", "chain"),
        ("offload-sqlite", "events"),
        ("offload-postgres", "events"),
        ("pgqueuer", "events"),
        ("procrastinate", "events"),
    ]
