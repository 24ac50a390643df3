"""The Flask extension: configured from app.config, reachable from views, enqueue in a view."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, request

from offload import Offload
from offload.integrations.flask import FlaskOffload, current_offload
from offload.testing import drain, enqueued


def test_a_view_enqueues_on_the_app_configured_from_app_config(tmp_path: Path) -> None:
    jobs = Offload(auto_migrate=True)
    sent: list[str] = []

    @jobs.job()
    def send_welcome(email: str) -> None:
        sent.append(email)

    site = Flask(__name__)
    site.config["OFFLOAD_URL"] = f"sqlite:///{tmp_path}/jobs.db"
    ext = FlaskOffload(jobs)
    ext.init_app(site)

    @site.post("/signup")
    def signup() -> dict[str, int]:
        return {"job": current_offload().enqueue("send_welcome", request.form["email"]).id}

    try:
        answer = site.test_client().post("/signup", data={"email": "ada@example.com"})
        assert answer.status_code == 200, answer.text
        assert jobs.config.url == f"sqlite:///{tmp_path}/jobs.db"
        assert [r.args for r in enqueued(jobs)] == [{"email": "ada@example.com"}]
        assert drain(jobs).completed == 1 and sent == ["ada@example.com"]
    finally:
        jobs.close()


def test_the_extension_builds_the_app_from_config(tmp_path: Path) -> None:
    site = Flask(__name__)
    site.config["OFFLOAD_URL"] = f"sqlite:///{tmp_path}/jobs.db"
    site.config["OFFLOAD_OPTIONS"] = {"lease_seconds": 12.0}
    jobs = FlaskOffload(flask_app=site).offload
    assert jobs is not None
    with site.app_context():
        assert current_offload() is jobs
    assert jobs.config.lease_seconds == 12.0


def test_current_offload_outside_an_initialised_app_says_so() -> None:
    with Flask(__name__).app_context(), pytest.raises(RuntimeError, match="init_app"):
        current_offload()
