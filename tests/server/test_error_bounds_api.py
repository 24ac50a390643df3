"""One job cannot grow the API's answers without bound (issue: a job resource of 4.4 MB after 60
failed attempts): a job keeps the errors of its first and last attempts, and `GET /jobs` lists
each job with its latest error alone, without its traceback. On every engine."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from offload import Offload
from offload.store._contract import ClaimParams, Failure

from ._helpers import enqueue


def _fail(app: Offload, job_id: int, times: int) -> None:
    store = app.store
    for n in range(times):
        store.job_promote_due()
        [job] = store.job_claim(ClaimParams(["default"], 1, "w", 60.0))
        assert job.id == job_id
        failure = Failure(job.id, job.lease_token, "E" * 30_000, f"{'T' * 44_000}{n}", 0)
        assert store.job_fail_many([failure]).applied == 1


def test_a_job_that_failed_sixty_times_stays_small(app: Offload, client: TestClient) -> None:
    job = enqueue(client, "add", max_attempts=1000)
    _fail(app, job["id"], 60)

    one = client.get(f"/jobs/{job['id']}")
    assert one.status_code == 200
    got = one.json()
    assert [e["attempt"] for e in got["errors"]] == [1, 2, 3, 55, 56, 57, 58, 59, 60]
    assert got["errors"][3]["kind"] == "omitted" and got["errors"][3]["omitted"] == 52
    assert len(one.content) < 100_000, len(one.content)

    listed = client.get("/jobs").json()["jobs"]
    [summary] = [j for j in listed if j["id"] == job["id"]]
    assert len(summary["errors"]) == 1
    [last] = summary["errors"]
    assert last["attempt"] == 60 and "traceback" not in last
    assert len(json.dumps(summary)) < 5_000
