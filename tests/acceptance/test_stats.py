"""`offload stats`: one snapshot as tables or JSON, live workers, and --watch."""

from __future__ import annotations

import json
import selectors
import signal
from pathlib import Path

import pytest

from ._helpers import CLI, Seeded, running_worker, wait_until


def test_json_snapshot(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    snap = cli("stats", "--url", url, "--json").json()
    assert snap["engine"] == "sqlite"
    assert snap["queues"]["default"]["completed"] == 1
    assert snap["queues"]["default"]["dead"] == 1
    assert snap["queues"]["emails"]["completed"] == 1
    assert snap["queues"]["emails"]["scheduled"] == 1
    assert snap["queues"]["nobody"]["available"] == 1
    assert snap["totals"]["completed"] == 2 and snap["totals"]["dead"] == 1
    for window in ("last_minute", "last_hour"):
        assert set(snap["throughput"][window]) == {"completed", "dead", "retryable"}
    assert snap["throughput"]["last_hour"]["completed"] == 2
    assert snap["throughput"]["last_hour"]["dead"] == 1
    (failure,) = snap["failures"]
    assert failure["id"] == ids.exploded and failure["error"] == "RuntimeError: kaput"
    assert snap["workers"] == []  # the seeding worker stopped and deregistered
    assert {"stale_acks", "rescued", "abandoned"} <= set(snap["counters"])


def test_tables_for_people(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, _ = seeded
    out = cli("stats", "--url", url).out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("QUEUE"))
    assert header.split() == [
        "QUEUE",
        "SCHEDULED",
        "AVAILABLE",
        "RUNNING",
        "COMPLETED",
        "RETRYABLE",
        "DEAD",
        "TOTAL",
        "OLDEST",
    ]
    totals = next(line for line in lines if line.startswith("(all)"))
    assert totals.split()[:-1] == ["(all)", "1", "1", "0", "2", "0", "1", "5"]
    assert totals.split()[-1][-1] in "smhd"  # the age of the one waiting job
    for section in ("Finished", "Recent failures", "Workers alive (0)", "Counters"):
        assert section in out
    assert "RuntimeError: kaput" in out


def test_lists_live_workers(cli: CLI, fresh_url: str, tmp_path: Path) -> None:
    with running_worker(cli, fresh_url, tmp_path / "worker.log") as worker:
        snap = cli("stats", "--url", fresh_url, "--json").json()
        (alive,) = snap["workers"]
        assert alive["pid"] == worker.pid
        assert alive["queues"] == ["default", "emails"]
        assert "Workers alive (1)" in cli("stats", "--url", fresh_url).out


def test_watch_streams_json_lines_until_interrupted(cli: CLI, fresh_url: str) -> None:
    proc = cli.popen("stats", "--url", fresh_url, "--json", "--watch", "0.1")
    assert proc.stdout is not None
    lines: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:

        def two_lines() -> bool:
            if selector.select(timeout=0.1):
                lines.append(proc.stdout.readline())  # type: ignore[union-attr]
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            return len(lines) >= 2

        wait_until(two_lines, "two snapshots from --watch")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        selector.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    for line in lines:
        assert json.loads(line)["totals"]["completed"] == 0


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("absent.db", 1, "no store at absent.db"),
        ("mysql://db/offload", 2, "unknown store URL"),
    ],
)
def test_needs_a_store(cli: CLI, url: str, code: int, message: str) -> None:
    result = cli("stats", "--url", url, code=code)
    assert message in result.err and result.out == ""
