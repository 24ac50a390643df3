"""Argument versions over HTTP, on every engine: `version` on enqueue (the kind's version by
default, older arguments upgraded here, newer ones kept at their version), in the job resource,
in a fetched job and in `GET /jobs/versions` (docs/versions.md)."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from offload import Offload

from ._helpers import MakeClient, assert_problem, fetch


def _to_v2(args: dict[str, Any]) -> dict[str, Any]:
    if args.get("name") == "explode":
        raise ValueError("no name to split")
    first, _, last = args["name"].partition(" ")
    return {"first": first, "last": last}


def _client(app: Offload, make_client: MakeClient) -> TestClient:
    @app.job(queue="versions", version=2, upgrade={2: _to_v2})
    def greet(first: str, last: str) -> str:
        return f"hello {first} {last}"

    return make_client(app, max_wait=2.0)


def test_enqueue_stamps_the_kinds_version_or_the_one_given(
    app: Offload, make_client: MakeClient
) -> None:
    client = _client(app, make_client)
    plain = client.post("/jobs", json={"kind": "greet", "args": {"first": "a", "last": "b"}})
    assert plain.status_code == 202 and plain.json()["version"] == 2

    old = client.post("/jobs", json={"kind": "greet", "version": 1, "args": {"name": "Ada L"}})
    assert old.status_code == 202, old.text
    assert (old.json()["version"], old.json()["args"]) == (2, {"first": "Ada", "last": "L"})

    newer = client.post("/jobs", json={"kind": "greet", "version": 3, "args": {"anything": 1}})
    assert newer.status_code == 202, newer.text
    assert (newer.json()["version"], newer.json()["args"]) == (3, {"anything": 1})
    assert client.get(f"/jobs/{newer.json()['id']}").json()["version"] == 3

    external = client.post("/jobs", json={"kind": "js.add", "args": {}, "version": 4})
    assert external.json()["version"] == 4
    assert client.post("/jobs", json={"kind": "js.add", "args": {}}).json()["version"] == 1

    kinds = {k["name"]: k for k in client.get("/kinds").json()["kinds"]}
    assert kinds["greet"]["version"] == 2

    # The worker protocol names the version of what it hands out.
    assert sorted(j["version"] for j in fetch(client, ["node"], limit=5)) == [1, 4]


def test_enqueue_refuses_bad_versions_and_failed_upgrades(
    app: Offload, make_client: MakeClient
) -> None:
    client = _client(app, make_client)
    for bad in (0, -1, "2", 2.5, 2**31):
        r = client.post("/jobs", json={"kind": "greet", "version": bad, "args": {}})
        assert r.status_code == 422, (bad, r.text)
    failed = client.post("/jobs", json={"kind": "greet", "version": 1, "args": {"name": "explode"}})
    assert_problem(failed, 422, "invalid-arguments")
    assert failed.json()["detail"] == (
        "UpgradeError: greet: upgrading arguments from version 1 to 2 failed: "
        "ValueError: no name to split"
    )
    wrong = client.post("/jobs", json={"kind": "greet", "version": 1, "args": {"first": "x"}})
    assert_problem(wrong, 422, "invalid-arguments")  # no `name` to upgrade from
    assert client.get("/jobs/versions").json() == {"versions": []}


def test_versions_are_counted(app: Offload, make_client: MakeClient) -> None:
    client = _client(app, make_client)
    for body in (
        {"kind": "greet", "args": {"first": "a", "last": "b"}},
        {"kind": "greet", "args": {"x": 1}, "version": 5},
        {"kind": "greet", "args": {"x": 1}, "version": 5, "delay": 60},
    ):
        assert client.post("/jobs", json=body).status_code == 202
    got = client.get("/jobs/versions", params={"kind": "greet"})
    assert got.status_code == 200
    assert got.json()["versions"] == [
        {
            "kind": "greet",
            "version": 2,
            "available": 1,
            "scheduled": 0,
            "retryable": 0,
            "running": 0,
            "total": 1,
            "declared": 2,
        },
        {
            "kind": "greet",
            "version": 5,
            "available": 1,
            "scheduled": 1,
            "retryable": 0,
            "running": 0,
            "total": 2,
            "declared": 2,
        },
    ]
    assert client.get("/jobs/versions", params={"kind": "none"}).json() == {"versions": []}
