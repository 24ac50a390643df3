"""`POST /jobs` admits every kind alike, on every engine: a queue's or a kind's backlog bound
refuses with 503 and Retry-After for kinds declared only on the server (`--external-kind`) as
for the app's own, and a blackhole rule stores them `shed`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.server import ExternalKind
from offload.store._contract import JobFilter

from ._helpers import MakeClient, assert_problem, declare


@pytest.fixture
def bounded(store_url: str) -> Iterator[Offload]:
    application = declare(Offload(store_url, max_backlog={"node": 2, "default": 2}))
    application.admission.backlog_refresh = 0.0  # read the depth table on every enqueue
    yield application
    application.close()


@pytest.fixture
def client(bounded: Offload, make_client: MakeClient) -> TestClient:
    kinds = (ExternalKind("js.add", "node"), ExternalKind("js.one", "elsewhere", max_backlog=1))
    return make_client(bounded, external_kinds=kinds)


def _post(client: TestClient, kind: str, **args: int) -> int:
    return client.post("/jobs", json={"kind": kind, "args": args}).status_code


def _counted(app: Offload) -> None:
    """What the maintenance leader does every second: recount every bounded backlog."""
    app.store.backlog_refresh()


@pytest.mark.parametrize(("kind", "args"), [("js.add", {}), ("add", {"a": 1, "b": 2})])
def test_six_posts_into_a_queue_bounded_at_two_get_two_202s(
    client: TestClient, bounded: Offload, kind: str, args: dict[str, int]
) -> None:
    statuses = []
    for _ in range(6):
        statuses.append(_post(client, kind, **args))
        _counted(bounded)
    assert statuses == [202, 202, 503, 503, 503, 503]
    r = client.post("/jobs", json={"kind": kind, "args": args})
    problem = assert_problem(r, 503, "overloaded")
    assert int(r.headers["retry-after"]) >= 1
    assert "past its bound of 2" in problem["detail"]
    assert len(bounded.store.job_list(JobFilter())) == 2


def test_an_external_kinds_own_bound_applies(client: TestClient, bounded: Offload) -> None:
    assert _post(client, "js.one") == 202
    _counted(bounded)
    r = client.post("/jobs", json={"kind": "js.one", "args": {}})
    problem = assert_problem(r, 503, "overloaded")
    assert "job type 'js.one'" in problem["detail"]
    bounded.admission.flush()
    assert bounded.store.counters().get("refused") == 1


def test_an_external_kind_matching_a_rule_is_stored_shed(
    client: TestClient, bounded: Offload
) -> None:
    bounded.rules.add(kind="js.add", where="args.n == 13", reason="unlucky")
    shed = client.post("/jobs", json={"kind": "js.add", "args": {"n": 13}}).json()
    kept = client.post("/jobs", json={"kind": "js.add", "args": {"n": 12}}).json()
    assert (shed["state"], kept["state"]) == ("shed", "available")
    assert "unlucky" in shed["errors"][-1]["error"]


def test_a_bad_external_kind_bound_is_refused_when_configured(
    bounded: Offload, make_client: MakeClient
) -> None:
    from offload import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_backlog"):
        make_client(bounded, external_kinds=(ExternalKind("js.x", max_backlog=0),))
