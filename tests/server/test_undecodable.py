"""Jobs whose stored data cannot be decoded, read over HTTP and on the dashboard: the field shows
as undecodable with the start of its stored text, and the rest of the job reads normally.

PostgreSQL's jsonb holds only valid JSON, so there only a shape can be wrong (meta that is not
an object, an errors list that is not one); text that is not JSON is SQLite's case.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.store._contract import ClaimParams, Completion, Failure
from tests.store._raw import overwrite

SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _dead(app: Offload) -> int:
    """A dead `add` job with one error entry."""
    job = app.enqueue("add", 1, 2)
    (claimed,) = app.store.job_claim(ClaimParams(["default"], 1, "w", 60.0))
    app.store.job_fail_many([Failure(claimed.id, claimed.lease_token, "RuntimeError: boom")])
    return job.id


def _completed(app: Offload) -> int:
    job = app.enqueue("add", 2, 3)
    (claimed,) = app.store.job_claim(ClaimParams(["default"], 1, "w", 60.0))
    app.store.job_complete_many([Completion(claimed.id, claimed.lease_token, 5)])
    return job.id


def _assert_shown(body: dict[str, Any], field: str, words: str, raw: str) -> None:
    bad = body["undecodable"][field]
    assert words in bad["error"] and bad["error"].startswith("PayloadDecodeError: ")
    assert bad["raw"].replace(" ", "") == raw.replace(" ", "")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("meta", '["m"]', "meta is a JSON array, not an object"),
        ("errors", '{"error": "x"}', "the errors list is a JSON object, not an array"),
        ("args", "[1, 2]", "arguments are a JSON array, not an object"),
    ],
)
def test_a_job_resource_shows_a_field_of_the_wrong_shape(
    app: Offload, client: TestClient, field: str, value: str, words: str
) -> None:
    job_id = _dead(app)
    overwrite(app.store, job_id, field, value)
    r = client.get(f"/jobs/{job_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "dead" and body["kind"] == "add"
    _assert_shown(body, field, words, value)
    assert body[field] == ([] if field == "errors" else None)
    if field != "args":
        assert body["args"] == {"a": 1, "b": 2}
    listed = client.get("/jobs").json()["jobs"]
    assert [j["undecodable"] for j in listed] == [body["undecodable"]]
    sound = client.get(f"/jobs/{_dead(app)}").json()
    assert sound["undecodable"] == {}


@SQLITE_ONLY
def test_a_result_that_cannot_be_decoded_reads_as_null_with_why(
    app: Offload, client: TestClient
) -> None:
    job_id = _completed(app)
    overwrite(app.store, job_id, "result", b'{"sum": \xff')
    r = client.get(f"/jobs/{job_id}/result")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "completed" and body["result"] is None
    assert "the result is not valid UTF-8" in body["undecodable"]["result"]["error"]
    assert body["undecodable"]["result"]["raw"] == '{"sum": \\xff'
    page = client.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200
    assert "Cannot be decoded: PayloadDecodeError: the result is not valid UTF-8" in page.text


@SQLITE_ONLY
def test_the_dashboard_shows_what_cannot_be_decoded_escaped(
    app: Offload, client: TestClient
) -> None:
    job_id = _dead(app)
    overwrite(app.store, job_id, "args", '{"<script>alert(1)</script>')
    overwrite(app.store, job_id, "errors", "[{broken")
    page = client.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200, page.text
    assert 'id="undecodable-args"' in page.text and 'id="undecodable-errors"' in page.text
    assert "arguments are not valid JSON" in page.text
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    listing = client.get("/ui/jobs")
    assert listing.status_code == 200
    assert "(errors list cannot be decoded)" in listing.text


def test_error_entries_of_any_shape_are_shown_as_text(app: Offload, client: TestClient) -> None:
    job_id = _dead(app)
    entries = '[{"error": 42, "at": "noon"}, {"exc_module": "os", "exc_type": "system"}]'
    overwrite(app.store, job_id, "errors", entries)
    for path in (f"/ui/jobs/{job_id}", "/ui/jobs", "/", f"/jobs/{job_id}", "/jobs"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
    page = client.get(f"/ui/jobs/{job_id}").text
    assert "exc_module" in page and "42" in page
    listing = client.get("/ui/jobs").text
    assert "exc_module" in listing
    assert "exc_module" in client.get("/").text  # the overview's recent failures
