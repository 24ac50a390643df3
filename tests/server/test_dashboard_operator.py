"""The dashboard's operator pages without a browser: HTML error pages for people and JSON
problems for programs, links under a sub-path, the blackhole rules page and its preview."""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from offload import Offload
from offload.server import create_app

from ._helpers import BASE, MakeClient, assert_problem, bearer

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_browsers_get_html_error_pages_and_programs_get_problems(
    sqlite_app: Offload, make_client: MakeClient
) -> None:
    client = make_client(sqlite_app)
    page = client.get("/ui/jobs/424242", headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Job not found" in page.text and "job 424242 does not exist" in page.text
    assert 'href="/problems/job-not-found"' in page.text
    nothing = client.get("/no/such/page", headers=HTML)
    assert nothing.status_code == 404 and "nothing at /no/such/page" in nothing.text
    assert "<h1>" in client.get("/ui/jobs?state=nonsense", headers=HTML).text
    # the API keeps its problem documents, even for a browser; programs get them everywhere
    assert_problem(client.get("/jobs/424242", headers=HTML), 404, "job-not-found")
    assert_problem(client.get("/ui/jobs/424242"), 404, "job-not-found")
    assert_problem(client.get("/no/such/page"), 404, "not-found")


def test_a_forbidden_button_is_an_html_page(sqlite_app: Offload, make_client: MakeClient) -> None:
    from ._helpers import TOKENS

    client = make_client(sqlite_app, tokens=TOKENS)
    viewer = {**HTML, **bearer("read"), "Origin": BASE}
    page = client.post("/ui/rules", headers=viewer, data={"kind": "x"})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "may not do this" in page.text


def test_links_and_redirects_follow_a_sub_path(sqlite_app: Offload) -> None:
    outer = Starlette(routes=[Mount("/ops/offload", app=create_app(sqlite_app))])
    with TestClient(outer, base_url=BASE) as client:
        for path in ("/", "/ui/jobs", "/ui/queues", "/ui/workers", "/ui/rules", "/ui/schedules"):
            page = client.get("/ops/offload" + path, headers=HTML)
            assert page.status_code == 200, (path, page.text)
            links = re.findall(r'(?:href|action|src|data-events)="(/[^"]*)"', page.text)
            assert links, path
            outside = [link for link in links if not link.startswith("/ops/offload/")]
            assert outside == [], (path, outside)
        assert client.get("/ops/offload/static/offload.css").status_code == 200
        missing = client.get("/ops/offload/ui/jobs/99", headers=HTML)
        assert missing.status_code == 404 and 'href="/ops/offload/"' in missing.text
        page = client.get("/ops/offload/ui/rules?kind=add&preview=1")
        added = client.post(
            "/ops/offload/ui/rules",
            data={"csrf": _csrf(page.text), "kind": "add", "where": "args.a == 1"},
            headers={"Origin": BASE},
            follow_redirects=False,
        )
        assert added.status_code == 303
        assert added.headers["location"].startswith("/ops/offload/ui/rules?added=")


def test_rules_page_previews_adds_and_removes(sqlite_app: Offload, make_client: MakeClient) -> None:
    client = make_client(sqlite_app)
    for a in (1, 1, 2):
        sqlite_app.enqueue("add", a, 0)
    sqlite_app.enqueue("send_welcome", 1)
    shown = client.get("/ui/rules", params={"kind": "add", "where": "args.a == 1", "preview": "1"})
    assert shown.status_code == 200
    assert "2 queued jobs match" in shown.text
    every = client.get("/ui/rules", params={"kind": "add", "preview": "1"}).text
    assert "3 queued jobs match" in every
    bad = client.get("/ui/rules", params={"where": "args.a ==", "preview": "1"})
    assert bad.status_code == 200 and 'id="rule-error"' in bad.text  # the form, with why
    assert 'id="add"' not in bad.text  # no add button for a rule that does not parse

    added = client.post(
        "/ui/rules",
        data={
            "csrf": _csrf(shown.text),
            "kind": "add",
            "where": "args.a == 1",
            "reason": "a flood",
            "expires_in": "3600",
        },
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert added.status_code == 303
    (rule,) = sqlite_app.rules.list()
    assert (rule.kind, rule.where, rule.reason) == ("add", "args.a == 1", "a flood")
    assert rule.expires_at is not None
    listed = client.get(added.headers["location"]).text
    assert f"Rule #{rule.id} added." in listed and "<code>args.a == 1</code>" in listed

    refused = client.post(
        "/ui/rules",
        data={"csrf": _csrf(listed), "where": "args.a =="},
        headers={"Origin": BASE},
    )
    assert_problem(refused, 422, "invalid-rule")
    removed = client.post(
        f"/ui/rules/{rule.id}/remove",
        data={"csrf": _csrf(listed)},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert removed.status_code == 303 and sqlite_app.rules.list() == []
    gone = client.post(
        f"/ui/rules/{rule.id}/remove", data={"csrf": _csrf(listed)}, headers={"Origin": BASE}
    )
    assert_problem(gone, 404, "rule-not-found")


def test_links_follow_a_proxys_root_path(sqlite_app: Offload) -> None:
    """`offload server --root-path /ops`: a proxy strips the prefix, uvicorn names it."""
    with TestClient(create_app(sqlite_app), base_url=BASE, root_path="/ops") as client:
        page = client.get("/ui/queues", headers=HTML)
        assert page.status_code == 200
        links = re.findall(r'(?:href|action|src)="(/[^"]*)"', page.text)
        assert links and all(link.startswith("/ops/") for link in links), links
