"""Dashboard pages rendered by the server (no browser): content, escaping, headers."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from offload import Offload
from offload.store._contract import ClaimParams, NewJob

from ._helpers import MakeClient, assert_problem, enqueue, fetch
from ._seed import demo_app, seed_history

PAGES = (
    "/",
    "/?range=24h",
    "/?range=7d",
    "/ui/jobs",
    "/ui/queues",
    "/ui/schedules",
    "/ui/workers",
    "/ui/run-time",
)


def test_every_page_renders_with_history(tmp_path: Path, make_client: MakeClient) -> None:
    app = demo_app(f"sqlite:///{tmp_path / 'demo.db'}")
    seed_history(app, minutes=20)
    c = make_client(app)
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    overview = c.get("/").text
    assert "Throughput and failures" in overview and "<svg" in overview
    assert "webhooks" in overview and "POST https://example.com/hook answered 503" in overview
    assert "nightly-report" in c.get("/ui/schedules").text
    assert "web-1:4242:a1b2c3" in c.get("/ui/workers").text
    slo = overview[overview.index('id="slo"') :]
    assert '<a href="/ui/jobs?kind=send_welcome">send_welcome</a>' in slo
    assert '<a href="/ui/jobs?queue=media">media</a>' in slo
    dead = c.get("/ui/jobs?state=dead").text
    assert "<td>deliver_webhook</td>" in dead and "<td>send_welcome</td>" not in dead
    app.close()


def test_overview_shows_slo_attainment_per_job_type(app: Offload, make_client: MakeClient) -> None:
    @app.job(queue="reports", slo=60)
    def report(n: int) -> int:
        return n

    client = make_client(app)
    assert "No job type with an SLO started in the last hour" in client.get("/").text
    now = app.store.now()
    app.store.job_insert_many(
        [NewJob("report", "reports", {"n": n}, slo=60.0) for n in (1, 2)]
        + [NewJob("report", "reports", {"n": 3}, slo=60.0, scheduled_at=now - 160.0)]
    )
    app.store.job_claim(ClaimParams(["reports"], 10, "w", 60.0))
    page = client.get("/").text
    row = page[page.index('<a href="/ui/jobs?kind=report">report</a>') :].split("</tr>")[0]
    cells = re.findall(r'<td class="num">(?:<strong>)?([^<]*)', row)
    assert cells[:4] == ["1 min", "3", "2", "66.7%"]
    assert cells[4] == "2 min / 2 min"  # the third started 100 s after its deadline
    assert '<a href="/ui/jobs?queue=reports">reports</a>' in row


def test_job_page_shows_arguments_errors_and_tracebacks(client: TestClient) -> None:
    job = enqueue(client, "explode", args={})
    claimed = fetch(client)[0]
    client.post(
        "/worker/fail",
        json={
            "id": claimed["id"],
            "token": claimed["token"],
            "error": "ValueError: nope",
            "traceback": "Traceback: line 3",
        },
    )
    page = client.get(f"/ui/jobs/{job['id']}").text
    assert "ValueError: nope" in page and "Traceback: line 3" in page
    assert 'id="retry"' in page and 'id="cancel"' not in page
    assert "attempt failed" in page and "dead" in page


def test_user_data_is_escaped(client: TestClient) -> None:
    evil = "<script>alert(1)</script>"
    job = enqueue(client, "js.add", args={"name": evil})
    page = client.get(f"/ui/jobs/{job['id']}").text
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    r = client.get("/ui/jobs", params={"kind": evil})
    assert_problem(r, 400, "invalid-parameter")
    assert evil not in r.text


def test_dashboard_problems(client: TestClient) -> None:
    assert_problem(client.get("/ui/jobs/99999"), 404, "job-not-found")
    assert_problem(client.get("/ui/jobs?state=nope"), 400, "invalid-parameter")
    assert_problem(client.get("/ui/jobs?before=x"), 400, "invalid-parameter")
    assert_problem(client.get("/?range=1y"), 400, "invalid-parameter")
    assert client.get("/ui/login", follow_redirects=False).status_code == 303  # no tokens


def test_jobs_browser_pages(sqlite_app: Offload, make_client: MakeClient) -> None:
    c = make_client(sqlite_app)
    ids = [enqueue(c)["id"] for _ in range(55)]
    first = c.get("/ui/jobs?queue=default").text
    assert f">#{ids[-1]}<" in first and f">#{ids[4]}<" not in first
    assert f"before={ids[5]}" in first
    older = c.get(f"/ui/jobs?queue=default&before={ids[5]}").text
    assert f">#{ids[4]}<" in older and f">#{ids[0]}<" in older and f">#{ids[5]}<" not in older


def test_buttons_answer_problems(client: TestClient) -> None:
    enqueue(client)
    running = fetch(client)[0]
    waiting = enqueue(client)
    page = client.get(f"/ui/jobs/{waiting['id']}").text  # its Cancel button has the token
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    form = {"csrf": csrf.group(1)}
    assert_problem(client.post(f"/ui/jobs/{running['id']}/retry", data=form), 409, "not-retryable")
    r = client.post(f"/ui/jobs/{running['id']}/cancel", data=form)  # asked to stop
    assert r.url.path == f"/ui/jobs/{running['id']}" and "stops at its next yield" in r.text
    assert_problem(client.post("/ui/jobs/99999/retry", data=form), 404, "job-not-found")
    r = client.post(
        f"/ui/jobs/{running['id']}/retry",
        content=b'{"csrf": "x"}',
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 415, "unsupported-media-type")
    r = client.post(f"/ui/jobs/{running['id']}/retry", content=b"x" * 70_000)
    assert_problem(r, 413, "payload-too-large")


def test_discard_buttons_on_the_job_page_and_in_the_browser(client: TestClient) -> None:
    running = enqueue(client)
    fetch(client)
    waiting = enqueue(client)
    page = client.get(f"/ui/jobs/{waiting['id']}").text
    assert f'action="/ui/jobs/{waiting["id"]}/discard"' in page
    browser = client.get("/ui/jobs").text
    for job in (running, waiting):
        assert f'action="/ui/jobs/{job["id"]}/discard"' in browser
    assert f'action="/ui/jobs/{waiting["id"]}/cancel"' in browser
    assert f'action="/ui/jobs/{running["id"]}/cancel"' not in browser
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    form = {"csrf": csrf.group(1)}
    r = client.post(f"/ui/jobs/{running['id']}/discard", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/jobs?discarded={running['id']}"
    assert f"Job #{running['id']} discarded." in client.get(r.headers["location"]).text
    assert_problem(client.get(f"/jobs/{running['id']}"), 404, "job-not-found")
    r = client.post(f"/ui/jobs/{running['id']}/discard", data=form)
    assert_problem(r, 404, "job-not-found")
    assert_problem(client.post(f"/ui/jobs/{waiting['id']}/discard", data={}), 403, "cross-origin")


def test_static_files_are_served(client: TestClient) -> None:
    css = client.get("/static/offload.css")
    assert css.status_code == 200 and "cache-control" not in {
        k for k, v in css.headers.items() if v == "no-store"
    }
    assert client.get("/static/offload.js").status_code == 200
    assert_problem(client.get("/static/missing.css"), 404, "not-found")
