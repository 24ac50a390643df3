"""Times are bounded where they enter (1970..9999 UTC once offsets and delays are added), and a
stored time outside that range never breaks a listing, a page or a command."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from offload import Offload
from offload._errors import ConfigurationError, InvalidArgumentsError
from offload.cli import main

from ._helpers import assert_problem, enqueue

EARLY = "0001-01-01T00:00:00+14:00"  # before year 1 in UTC
LATE = "9999-12-31T23:59:59-14:00"  # after year 9999 in UTC


def test_python_times_share_one_bound(sqlite_app: Offload) -> None:
    add = sqlite_app.jobs["add"]
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    with pytest.raises(InvalidArgumentsError, match="at .*1970-01-01 and 9999-12-31") as caught:
        add.options(at=early).enqueue(1, 2)
    assert caught.value.argument == "at"
    with pytest.raises(InvalidArgumentsError, match="delay") as caught:
        add.options(delay=1e13).enqueue(1, 2)
    assert caught.value.argument == "delay"
    with pytest.raises(ConfigurationError, match="expires"):
        sqlite_app.rules.add(kind="add", expires=timedelta(days=3_000_000))
    with pytest.raises(ConfigurationError, match="expires"):
        sqlite_app.rules.add(kind="add", expires=datetime.fromisoformat(LATE))
    with pytest.raises(ConfigurationError, match="expires"):
        add.options(expires=datetime(1969, 12, 31, tzinfo=UTC)).enqueue(1, 2)


def test_http_refuses_times_out_of_range(client: TestClient) -> None:
    r = client.post("/jobs", json={"kind": "add", "args": {"a": 1, "b": 2}, "run_at": EARLY})
    body = assert_problem(r, r.status_code, r.json()["type"].rsplit("/", 1)[-1])
    assert 400 <= r.status_code < 500 and "run_at" in body["detail"], body
    r = client.post("/jobs", json={"kind": "js.add", "args": {}, "run_at": EARLY})
    assert 400 <= r.status_code < 500 and "run_at" in r.json()["detail"], r.text
    r = client.post("/rules", json={"kind": "add", "expires_at": LATE})
    assert 400 <= r.status_code < 500 and "expires" in r.json()["detail"], r.text
    assert client.get("/jobs").json()["jobs"] == []
    assert client.get("/rules").json()["rules"] == []


def _store_out_of_range(path: Path, job_id: int) -> None:
    """Write times no version accepts straight into the file (an older version, a hand edit)."""
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE offload_jobs SET scheduled_at = ?, expires_at = ? WHERE id = ?",
            (-62_200_000_000.0, 1e13, job_id),
        )
        db.execute("UPDATE offload_rules SET expires_at = ?", (1e13,))


def test_stored_times_out_of_range_are_shown(
    sqlite_app: Offload, sqlite_url: str, make_client: object
) -> None:
    client = make_client(sqlite_app, max_wait=2.0)  # type: ignore[operator]
    job_id = enqueue(client)["id"]
    sqlite_app.rules.add(kind="nothing.here", expires=60)
    _store_out_of_range(Path(sqlite_url.removeprefix("sqlite:///")), job_id)

    listed = client.get("/jobs")
    assert listed.status_code == 200, listed.text
    assert listed.json()["jobs"][0]["scheduled_at"].startswith("1970-01-01")
    shown = client.get(f"/jobs/{job_id}")
    assert shown.status_code == 200, shown.text
    assert client.get(f"/ui/jobs/{job_id}").status_code == 200
    assert client.get("/ui/jobs").status_code == 200
    rules = client.get("/rules")
    assert rules.status_code == 200, rules.text
    assert rules.json()["rules"][0]["expires_at"].startswith("9999-12-31")

    cli = CliRunner()
    env = {"OFFLOAD_URL": sqlite_url}
    out = cli.invoke(main, ["jobs", "list", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["scheduled_at"].startswith("1970-01-01")
    out = cli.invoke(main, ["jobs", "show", str(job_id)], env=env)
    assert out.exit_code == 0 and "1970-01-01" in out.output, out.output
    out = cli.invoke(main, ["rules", "list"], env=env)
    assert out.exit_code == 0 and "9999-12-31" in out.output, out.output
