"""`offload queues …` and `offload kinds …` through the real CLI: pause, list, resume, with
--json and as tables; `offload stats` shows what is paused; bad names are usage errors."""

from __future__ import annotations

from ._helpers import CLI


def test_pause_list_and_resume_a_queue_and_a_kind(cli: CLI, fresh_url: str) -> None:
    paused = cli(
        "queues", "pause", "emails", "--reason", "provider down", "--url", fresh_url, "--json"
    ).json()
    assert [(p["scope"], p["name"], p["reason"], p["new"]) for p in paused] == [
        ("queue", "emails", "provider down", True)
    ]
    assert "@" in paused[0]["paused_by"]  # user@host
    again = cli("queues", "pause", "emails", "--url", fresh_url).out
    assert "already" in again
    assert cli("kinds", "pause", "ResizeImage", "--url", fresh_url).out.startswith(
        "paused kind ResizeImage"
    )

    queues = cli("queues", "list", "--url", fresh_url, "--json").json()
    assert [(q["name"], q["paused"]) for q in queues] == [("emails", True)]
    table = cli("queues", "list", "--url", fresh_url).out
    header, row = table.splitlines()
    assert header.split()[:2] == ["QUEUE", "STATE"]
    assert row.split()[:2] == ["emails", "paused"] and "provider down" in row
    kinds = cli("kinds", "list", "--paused", "--url", fresh_url, "--json").json()
    assert [(k["name"], k["paused"]) for k in kinds] == [("ResizeImage", True)]

    stats = cli("stats", "--url", fresh_url, "--json").json()
    assert stats["paused"] == {"queues": ["emails"], "kinds": ["ResizeImage"]}
    assert "paused" in cli("stats", "--url", fresh_url).out

    resumed = cli("queues", "resume", "emails", "nothing", "--url", fresh_url, "--json").json()
    assert [(r["name"], r["resumed"]) for r in resumed] == [("emails", True), ("nothing", False)]
    cli("kinds", "resume", "ResizeImage", "--url", fresh_url)
    assert cli("queues", "list", "--paused", "--url", fresh_url, "--json").json() == []
    assert cli("kinds", "list", "--paused", "--url", fresh_url, "--json").json() == []


def test_bad_names_are_usage_errors(cli: CLI, fresh_url: str) -> None:
    result = cli("queues", "pause", "", "--url", fresh_url, code=2)
    assert "non-empty" in result.err
    result = cli("kinds", "pause", "k" * 201, "--url", fresh_url, code=2)
    assert "at most 200" in result.err
    assert cli("queues", "list", "--paused", "--url", fresh_url, "--json").json() == []
