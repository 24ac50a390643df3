"""`--log-format json` (and $OFFLOAD_LOG_FORMAT): every line a worker logs is one JSON object,
and lines written during a job's attempt carry its id, kind, attempt and correlation id (the
root's id for a job that another job enqueued)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ._helpers import CLI

APP_SOURCE = """
import logging
import offload

app = offload.Offload()
log = logging.getLogger("logapp")

@app.job(max_attempts=1)
def greet(name: str) -> None:
    log.warning("hello %s", name, extra={"mood": "fine"})
    wave.enqueue(name)

@app.job(max_attempts=1)
def wave(name: str) -> None:
    log.warning("wave %s", name)
"""


def _lines(text: str) -> list[dict[str, object]]:
    """The log lines (the command's own banner and summary, from `offload worker: `, are not
    log records and stay plain)."""
    return [
        json.loads(line)
        for line in text.splitlines()
        if line.strip() and not line.startswith("offload worker: ")
    ]


@pytest.mark.parametrize("via", ["option", "env"])
def test_worker_logs_json_lines_with_the_job_fields(tmp_path: Path, via: str) -> None:
    (tmp_path / "logapp.py").write_text(APP_SOURCE)
    # the app's store is the folder's ./offload.db, as the worker's
    code = "import logapp; print(logapp.app.enqueue('greet', 'ann').id)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=CLI(tmp_path).env,
    )
    assert done.returncode == 0, done.stderr
    job_id = int(done.stdout)
    if via == "env":
        cli = CLI(tmp_path, env={"OFFLOAD_LOG_FORMAT": "json"})
        result = cli("worker", "logapp:app", "--burst")
    else:
        cli = CLI(tmp_path)
        result = cli("worker", "logapp:app", "--burst", "--log-format", "json")
    lines = _lines(result.err)  # every log line parses
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    hello, wave = [line for line in lines if line["logger"] == "logapp"]
    assert hello["message"] == "hello ann"
    assert hello["job_id"] == job_id
    assert hello["kind"] == "greet"
    assert hello["attempt"] == 1
    assert hello["correlation_id"] == job_id
    assert hello["mood"] == "fine"
    # a job enqueued by a job carries its root's id as its correlation id
    assert wave["message"] == "wave ann"
    assert wave["job_id"] != job_id
    assert wave["correlation_id"] == job_id
    assert any(line["logger"].startswith("offload") for line in lines)


def test_every_command_takes_log_format(tmp_path: Path) -> None:
    cli = CLI(tmp_path)
    for command in (["stats"], ["jobs", "list"], ["migrate"], ["rules", "list"]):
        cli(*command, "--help")
        assert "--log-format" in cli(*command, "--help").out
    bad = cli("stats", "--log-format", "xml", code=2)
    assert "xml" in bad.err
