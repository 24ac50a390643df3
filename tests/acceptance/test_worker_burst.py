"""`offload worker --burst`: drain what is queued, what comes due and what is enqueued while
draining, then exit 0; with one process and with a supervisor of several."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from offload.store._contract import JobFilter

from ._helpers import CLI, opened

APP = "operatorapp:app"


@pytest.fixture
def marks_cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path, env={"OPERATOR_MARKS": str(tmp_path)})


def _seed(cli: CLI, url: str) -> dict[str, int]:
    """Enqueue in one process (operatorapp.seed), for speed: it is the drain under test."""
    code = f"import json, operatorapp; print(json.dumps(operatorapp.seed({url!r})))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cli.cwd, env=cli.env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


@pytest.mark.parametrize("processes", ["1", "2"])
def test_burst_drains_the_queues_and_exits_0(
    marks_cli: CLI, fresh_url: str, processes: str
) -> None:
    ids = _seed(marks_cli, fresh_url)
    result = marks_cli(
        "worker", APP, "--url", fresh_url, "--burst", "--processes", processes, timeout=60
    )
    if processes == "1":
        assert "drained: " in result.err
    with opened(fresh_url) as store:
        states = {name: store.job_get(i).state for name, i in ids.items()}  # type: ignore[union-attr]
        follow_ups = [r for r in store.job_list(JobFilter(limit=100)) if r.id > max(ids.values())]
    assert all(states[f"work-{i}"] == "completed" for i in range(5)), states
    assert states["flaky"] == "completed"  # its retry was due at once: run again
    assert states["fan_out"] == "completed"
    assert states["slow_retry"] == "retryable"  # due in an hour: left for later
    assert states["later"] == "scheduled"
    assert len(follow_ups) == 3 and all(r.state == "completed" for r in follow_ups)


def test_burst_on_empty_queues_exits_at_once(cli: CLI, fresh_url: str) -> None:
    result = cli("worker", APP, "--url", fresh_url, "--burst", timeout=30)
    assert "drained: 0 completed, 0 failed" in result.err
    with opened(fresh_url) as store:
        assert store.worker_list(60.0) == []  # deregistered on the way out


def test_burst_and_reload_do_not_go_together(cli: CLI, fresh_url: str) -> None:
    result = cli("worker", APP, "--url", fresh_url, "--burst", "--reload", code=2)
    assert "--burst and --reload" in result.err
