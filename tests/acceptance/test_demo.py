"""`offload demo` end to end: real worker processes, and a summary that tells the truth."""

from __future__ import annotations

import re
from pathlib import Path

from ._helpers import CLI, opened


def _number(label: str, text: str) -> int:
    match = re.search(rf"^\s+{label}\s+(\d+)", text, re.MULTILINE)
    assert match, f"no '{label}' line in:\n{text}"
    return int(match.group(1))


def test_demo_in_the_working_folder(cli: CLI, tmp_path: Path) -> None:
    stale = tmp_path / "offload-demo.db"
    stale.write_bytes(b"not a database")  # overwritten, not read
    result = cli("demo", "--jobs", "20", timeout=120)
    out = result.out
    assert "offload demo: 21 jobs, 2 worker processes" in out
    assert re.search(r"completed \d+ · dead \d+ · cron fired \d+", out)  # the live line
    assert "stopping workers" in out
    assert _number("completed", out) >= 20
    assert _number("dead", out) == 1
    assert "import_invoice" in out and "ValueError: invoice 4711" in out
    assert _number("cron firings", out) >= 1
    assert re.search(r"throughput\s+[\d.]+\s+jobs/s", out)
    with opened(str(stale)) as store:
        assert store.job_counts()  # the demo's store is left to look around in
        assert store.worker_list(60.0) == []  # its workers stopped and deregistered


def test_demo_json_summary(cli: CLI, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    result = cli("demo", "--url", url, "--jobs", "12", "--json", timeout=120)
    summary = result.json()
    assert summary["finished"] is True and summary["unfinished"] == 0
    assert summary["enqueued"] == {
        "import_invoice": 1,
        "send_signup_email": 6,
        "make_thumbnail": 3,
        "deliver_webhook": 3,
    }
    assert summary["completed"] > 0
    assert summary["dead"] == 1
    (dead,) = summary["dead_jobs"]
    assert dead["kind"] == "import_invoice" and dead["attempts"] == 3
    assert dead["error"].startswith("ValueError: invoice 4711")
    assert summary["cron_firings"] >= 1 and summary["cron_completed"] >= 1
    # deliveries 0, 1, 2: the endpoint drops the first `id % 3` calls; the invoice fails 3 times
    assert summary["retried"] == 2
    assert summary["failed_attempts"] == 1 + 2 + 3
    assert summary["jobs_per_second"] > 0
    assert "cron fired" in result.err  # the live view goes to stderr with --json
    assert not (tmp_path / "offload-demo.db").exists()


def test_every_command_is_listed(cli: CLI) -> None:
    out = cli("--help").out
    for command in ("worker", "relay", "enqueue", "jobs", "stats", "migrate", "demo"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), out
