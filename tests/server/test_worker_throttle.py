"""An HTTP worker's failures follow the same outcome policy as a Python worker's
(offload/outcome.py): throttles tell the job's limit and keep its attempt, and a kind the
server does not declare backs off as a declared kind does by default."""

from __future__ import annotations

import random
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Adaptive, Exponential, Limit, Offload
from offload.outcome import DEFAULT_BACKOFF, MISSING_CODE_DELAY
from offload.store._contract import ClaimedJob
from offload.worker._ack import to_acks
from offload.worker._executor import Outcome

from ._helpers import MakeClient, assert_problem, enqueue, fetch


def _concurrency(app: Offload, key: str) -> int | None:
    [limit] = [x for x in app.store.limit_list() if x.key == key]
    return limit.concurrency


@pytest.fixture
def partner(app: Offload, make_client: MakeClient) -> TestClient:
    """A server whose app declares a job type with an adaptive limit, run by HTTP workers."""

    @app.job(
        queue="partner",
        max_attempts=1,
        limit=Limit("partner", concurrency=4, adaptive=Adaptive(increase=10)),
    )
    def push(order: int) -> None: ...

    return make_client(app, max_wait=2.0)


def _fail(client: TestClient, job: dict[str, Any], **body: Any) -> Any:
    return client.post(
        "/worker/fail", json={"id": job["id"], "token": job["token"], "error": "429", **body}
    )


def test_a_throttled_fail_cuts_the_adaptive_limit_and_keeps_the_attempt(
    partner: TestClient, app: Offload
) -> None:
    enqueue(partner, "push", args={"order": 1})
    [job] = fetch(partner, ["partner"])
    assert (job["attempt"], job["max_attempts"]) == (1, 1)

    r = _fail(partner, job, throttled=True, retry_after=0)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": job["id"], "state": "retryable", "retry_in": 0.0}
    record = app.store.job_get(job["id"])
    assert record is not None
    assert (record.state, record.attempt) == ("retryable", 0)  # its only attempt is not used up
    assert [e["kind"] for e in record.errors] == ["throttled"]
    assert _concurrency(app, "partner") == 2  # 4, cut by half

    app.store.job_promote_due()
    [again] = fetch(partner, ["partner"])
    assert (again["id"], again["attempt"]) == (job["id"], 1)
    done = {"id": again["id"], "token": again["token"]}
    assert partner.post("/worker/complete", json=done).status_code == 200
    assert _concurrency(app, "partner") == 7  # a success adds increase / value: 2 + 10/2


def test_a_throttle_without_a_delay_waits_for_the_kinds_backoff(
    partner: TestClient, app: Offload
) -> None:
    enqueue(partner, "push", args={"order": 2})
    [job] = fetch(partner, ["partner"])
    r = _fail(partner, job, throttled=True)
    assert r.json()["state"] == "retryable"
    default = Exponential()  # `push` declares no backoff
    low, high = default.base * (1 - default.jitter), default.base * (1 + default.jitter)
    assert low <= r.json()["retry_in"] <= high


def test_an_undeclared_kinds_backoff_is_the_python_workers_default(
    client: TestClient, app: Offload, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: 0.0)  # no jitter, to compare

    @app.job(queue="node")
    def declared() -> None: ...

    def by_python(attempt: int) -> float | None:
        """The delay a Python worker gives a failed run of a kind declaring no backoff."""
        claimed = ClaimedJob(
            1, "declared", "node", {}, {}, attempt, 20, "at_least_once", None, 1, 0
        )
        _, [failure] = to_acks(app, [Outcome(claimed, False, error="e")])
        return failure.retry_in

    job_id = enqueue(client, "js.add", args={})["id"]  # a kind the server does not declare
    over_http = []
    for attempt in (1, 2):
        [job] = fetch(client, ["node"])
        assert (job["id"], job["attempt"]) == (job_id, attempt)
        over_http.append(_fail(client, job).json()["retry_in"])
        assert app.store.job_retry(job_id)  # run it again now
    assert over_http == [by_python(1), by_python(2)] == [DEFAULT_BACKOFF(1), DEFAULT_BACKOFF(2)]
    assert over_http == [2.0, 4.0]  # exponential, not the flat delay of a worker without code
    assert MISSING_CODE_DELAY not in over_http


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"throttled": "yes"}, "body.throttled must be a boolean"),
        ({"throttled": True, "retry_after": -1}, "body.retry_after must be >= 0"),
        ({"throttled": True, "retry_after": "30"}, "body.retry_after must be a number"),
        ({"throttled": True, "retry_after": 31 * 86400}, "body.retry_after must be <="),
        ({"retry_after": 5}, "retry_after without throttled: true"),
        ({"throttled": False, "retry_after": 5}, "retry_after without throttled: true"),
        ({"throttled": True, "retryable": False}, "always retried"),
        ({"throttled": True, "retry_in": 1, "retry_after": 1}, "send one delay"),
    ],
)
def test_bad_throttle_fields_are_422_and_change_nothing(
    partner: TestClient, app: Offload, body: dict[str, Any], says: str
) -> None:
    enqueue(partner, "push", args={"order": 3})
    [job] = fetch(partner, ["partner"])
    problem = assert_problem(_fail(partner, job, **body), 422, "invalid-request")
    assert says in problem["detail"]
    record = app.store.job_get(job["id"])
    assert record is not None and (record.state, record.attempt) == ("running", 1)
    assert _concurrency(app, "partner") == 4
