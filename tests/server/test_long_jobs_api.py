"""Progress, cursor and stop requests of long jobs in the HTTP API and on the dashboard's job
page (docs/long-jobs.md)."""

from __future__ import annotations

from starlette.testclient import TestClient

from offload import Offload
from offload.store._contract import Checkpoint

from ._helpers import enqueue, fetch


def test_get_job_shows_progress_with_an_estimated_finish(app: Offload, client: TestClient) -> None:
    enqueue(client)
    running = fetch(client)[0]
    app.store.job_checkpoint_many(
        [Checkpoint(running["id"], running["token"], {"after": 250}, 250, 1000, 30.0)]
    )
    body = client.get(f"/jobs/{running['id']}").json()
    assert body["progress"]["done"] == 250 and body["progress"]["total"] == 1000
    assert body["progress"]["percent"] == 25.0 and body["progress"]["eta"] is not None
    assert body["cursor"] == {"after": 250} and body["stop_request"] is None

    page = client.get(f"/ui/jobs/{running['id']}").text
    assert '<progress max="1000" value="250">' in page
    assert 'id="eta"' in page and "estimated finish" in page
    assert 'id="cancel"' in page  # a running job can be asked to stop

    assert app.get_job(running["id"]).progress.percent == 25.0  # type: ignore[union-attr]
    assert app.get_job(running["id"]).cancel()
    body = client.get(f"/jobs/{running['id']}").json()
    assert (body["state"], body["stop_request"]) == ("running", "cancel")
    assert 'id="stop-request"' in client.get(f"/ui/jobs/{running['id']}").text


def test_a_job_without_progress_shows_none(client: TestClient) -> None:
    job = enqueue(client)
    body = client.get(f"/jobs/{job['id']}").json()
    assert (body["progress"], body["cursor"], body["stop_request"]) == (None, None, None)
    assert 'id="progress"' not in client.get(f"/ui/jobs/{job['id']}").text
