"""The FastAPI integration: the app opened and closed with the lifespan, the dashboard and
API under a sub-path (its pages link within it), and `Depends(get_offload)` in a route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.testclient import TestClient

from offload import Offload
from offload.integrations.fastapi import get_offload, lifespan, mount
from offload.testing import enqueued


def _site(tmp_path: Path) -> tuple[FastAPI, Offload]:
    jobs = Offload(f"sqlite:///{tmp_path}/jobs.db")

    @jobs.job()
    def send_welcome(email: str) -> None: ...

    api = FastAPI(lifespan=lifespan(jobs))
    mount(api, jobs, "/ops/offload")

    @api.post("/signup")
    def signup(email: str, app: Offload = Depends(get_offload)) -> dict[str, int]:
        return {"job": app.enqueue("send_welcome", email).id}

    return api, jobs


def test_a_route_enqueues_with_the_app_it_depends_on(tmp_path: Path) -> None:
    api, jobs = _site(tmp_path)
    with TestClient(api, base_url="http://localhost") as client:
        answer = client.post("/signup", params={"email": "ada@example.com"})
        assert answer.status_code == 200, answer.text
        assert [r.args for r in enqueued(jobs)] == [{"email": "ada@example.com"}]
        job = client.get(f"/ops/offload/jobs/{answer.json()['job']}")
        assert job.status_code == 200, job.text
        assert job.json()["kind"] == "send_welcome"
    assert jobs._store is None  # closed with the lifespan


def test_the_dashboard_links_within_the_sub_path(tmp_path: Path) -> None:
    api, jobs = _site(tmp_path)
    with TestClient(api, base_url="http://localhost") as client:
        client.post("/signup", params={"email": "ada@example.com"})
        page = client.get("/ops/offload/")
        assert page.status_code == 200, page.text
        links = set(re.findall(r'(?:href|src)="(/[^"]*)"', page.text))
        assert links, page.text[:500]
        assert all(link.startswith("/ops/offload/") for link in links), links
        for link in sorted(links):
            assert client.get(link).status_code == 200, link
        assert client.get("/ops/offload/ui/jobs").status_code == 200


def test_get_offload_says_what_is_missing(tmp_path: Path) -> None:
    api = FastAPI()

    @api.get("/")
    def root(app: Offload = Depends(get_offload)) -> None: ...

    with TestClient(api, raise_server_exceptions=True) as client:
        with pytest.raises(RuntimeError, match="lifespan"):
            client.get("/")


def test_your_own_lifespan_runs_inside_and_its_state_reaches_requests(tmp_path: Path) -> None:
    from contextlib import asynccontextmanager

    jobs = Offload(f"sqlite:///{tmp_path}/jobs.db")
    seen: list[str] = []

    @asynccontextmanager
    async def mine(_: FastAPI):  # type: ignore[no-untyped-def]
        seen.append("start")
        yield {"greeting": "hello"}
        seen.append("stop")

    api = FastAPI(lifespan=lifespan(jobs, then=mine))

    @api.get("/")
    def root(request: Request, app: Offload = Depends(get_offload)) -> str:
        return f"{request.state.greeting} {app is jobs}"

    with TestClient(api, base_url="http://localhost") as client:
        assert client.get("/").json() == "hello True"
    assert seen == ["start", "stop"]


def test_locations_and_links_of_the_api_point_into_the_sub_path(tmp_path: Path) -> None:
    api, jobs = _site(tmp_path)
    with TestClient(api, base_url="http://localhost", follow_redirects=False) as client:
        posted = client.post(
            "/ops/offload/jobs", json={"kind": "send_welcome", "args": {"email": "a@b.c"}}
        )
        assert posted.status_code == 202, posted.text
        job_id = posted.json()["id"]
        assert posted.headers["location"] == f"/ops/offload/jobs/{job_id}"
        assert posted.json()["links"]["self"] == f"/ops/offload/jobs/{job_id}"
        assert client.get(posted.headers["location"]).status_code == 200
        listed = client.get("/ops/offload/jobs").json()["jobs"]
        assert [j["links"]["self"] for j in listed] == [f"/ops/offload/jobs/{job_id}"]
        rule = client.post(
            "/ops/offload/rules",
            json={"kind": "send_welcome", "where": "args.email == 'x'", "reason": "test"},
        )
        assert rule.status_code == 201, rule.text
        assert rule.headers["location"].startswith("/ops/offload/rules/")
    with TestClient(jobs_server_only(jobs), base_url="http://localhost") as client:
        top = client.post("/jobs", json={"kind": "send_welcome", "args": {"email": "a@b.c"}})
        assert top.headers["location"] == f"/jobs/{top.json()['id']}"  # at the top: no prefix


def jobs_server_only(jobs: Offload) -> Starlette:
    from offload.server import create_app

    return create_app(jobs)
