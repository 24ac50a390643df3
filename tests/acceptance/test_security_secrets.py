"""A job type's secret arguments are never shown or logged: not by the API, the dashboard or
`offload jobs`, and not in a worker's log line about the failed attempt."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from offload import ConfigurationError, Offload
from offload.server import create_app

from ._helpers import CLI, opened, wait_state, wait_until
from .secretapp import app as secret_app

SECRET = "correct-horse-battery-staple"


def test_secret_args_must_name_arguments() -> None:
    app = Offload("sqlite:///unused.db")
    with pytest.raises(ConfigurationError, match="'pasword', which is not an argument"):

        @app.job(secret_args=("pasword",))
        def log_in(user: str, password: str) -> None: ...

    with pytest.raises(ConfigurationError, match="secret_args"):

        @app.job(secret_args=(1,))
        def other(password: str) -> None: ...


def test_secret_args_are_masked_everywhere(cli: CLI, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with opened(url) as store:
        store.migrate()
    job_id = int(
        cli(
            "enqueue", "secretapp:app", "log_in", "user=ada", f"password={SECRET}", "--url", url
        ).out
    )
    log = tmp_path / "worker.log"
    worker = cli.popen("worker", "secretapp:app", "--url", url, "--poll-interval", "0.2", log=log)
    try:
        wait_state(url, job_id, "dead")
        wait_until(lambda: "attempt 1 failed" in log.read_text(), "the failure to be logged")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    output = log.read_text()
    assert "no login for ada with ***" in output, output
    assert SECRET not in output

    shown = cli("jobs", "show", str(job_id), "--url", url).out
    assert SECRET not in shown and "***" in shown, shown
    listed = cli("jobs", "list", "--json", "--url", url).out
    assert SECRET not in listed
    assert json.loads(listed)[0]["args"] == {"user": "ada", "password": "***"}
    assert SECRET not in cli("jobs", "show", str(job_id), "--json", "--url", url).out

    app = Offload(url)  # the server masks without the job's code, from what the job records
    try:
        with TestClient(create_app(app), base_url="http://127.0.0.1:8750") as client:
            for path in (f"/jobs/{job_id}", "/jobs", f"/ui/jobs/{job_id}", "/ui/jobs"):
                r = client.get(path)
                assert r.status_code == 200 and SECRET not in r.text, (path, r.text)
            assert client.get(f"/jobs/{job_id}").json()["args"]["password"] == "***"
    finally:
        app.close()
    assert secret_app.jobs["log_in"].options_.secret_args == ("password",)
