"""Bad strings over HTTP, on every engine alike: a NUL or a lone surrogate (JSON's `\\u0000`,
`\\ud800`) in a job's arguments or meta is a 422 problem naming its path, in a worker's host
or result a 422, in a worker's error text it is replaced; in a rule a 422 `invalid-rule`.
Never a 500, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.store._contract import JobFilter

from ._helpers import assert_problem, enqueue, fetch

# JSON text, as a client in any language sends it: the escapes decode to the bad characters.
NUL = '"a\\u0000b"'
SURROGATE = '"x\\ud800y"'
BAD = {"nul": NUL, "surrogate": SURROGATE}
SAYS = {"nul": "NUL character", "surrogate": "lone surrogate"}


def _post(client: TestClient, path: str, text: str) -> Any:
    return client.post(path, content=text.encode(), headers={"content-type": "application/json"})


def _stored(app: Offload) -> int:
    return len(app.store.job_list(JobFilter()))


CREATES = [
    ("declared", '{{"kind":"send_welcome","args":{{"user_id":1,"locale":{bad}}}}}', "args.locale"),
    ("external", '{{"kind":"js.add","args":{{"i":[1,{{"name":{bad}}}]}}}}', "args.i[1].name"),
    ("external-key", '{{"kind":"js.add","args":{{"ok":{{{bad}:1}}}}}}', "args.ok"),
    ("declared-meta", '{{"kind":"add","args":{{"a":1,"b":2}},"meta":{{"t":{bad}}}}}', "meta.t"),
    ("external-meta", '{{"kind":"js.add","args":{{}},"meta":{{{bad}:1}}}}', "meta"),
]


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize(("case", "body", "path"), CREATES, ids=[c[0] for c in CREATES])
def test_creating_a_job_with_a_bad_string_is_422_naming_the_path(
    client: TestClient, app: Offload, bad: str, case: str, body: str, path: str
) -> None:
    r = _post(client, "/jobs", body.format(bad=BAD[bad]))
    problem = assert_problem(r, 422, "invalid-arguments")
    assert problem["path"] == path
    assert SAYS[bad] in problem["detail"] and path in problem["detail"]
    assert _stored(app) == 0


def test_the_same_strings_escaped_are_plain_text_and_accepted(client: TestClient) -> None:
    job = enqueue(client, "js.add", args={"text": "\\u0000 and \\ud800 as written"})
    assert job["args"] == {"text": "\\u0000 and \\ud800 as written"}


# --- the worker protocol ----------------------------------------------------------------------
@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_worker_host_with_a_bad_string_is_422(client: TestClient, app: Offload, bad: str) -> None:
    enqueue(client)
    body = '{"worker":"w1","queues":["default"],"host":' + BAD[bad] + "}"
    assert_problem(_post(client, "/worker/fetch", body), 422, "invalid-request")
    heartbeat = '{"worker":"w1","leases":[],"host":' + BAD[bad] + "}"
    assert_problem(_post(client, "/worker/heartbeat", heartbeat), 422, "invalid-request")
    assert app.store.worker_list(60.0) == []
    assert [j.state for j in app.store.job_list(JobFilter())] == ["available"]  # not claimed


def test_a_worker_host_with_a_newline_is_422(client: TestClient) -> None:
    r = client.post("/worker/fetch", json={"worker": "w1", "queues": ["default"], "host": "h\n"})
    assert_problem(r, 422, "invalid-request")


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_result_with_a_bad_string_is_422_and_the_job_stays_leased(
    client: TestClient, app: Offload, bad: str
) -> None:
    enqueue(client)
    [job] = fetch(client)
    result = '{"ok":[1,' + BAD[bad] + "]}"
    body = f'{{"id":{job["id"]},"token":"{job["token"]}","result":{result}}}'
    problem = assert_problem(_post(client, "/worker/complete", body), 422, "invalid-request")
    assert problem["path"] == "result.ok[1]" and SAYS[bad] in problem["detail"]
    assert app.get_job(job["id"]).state == "running"
    ok = {"id": job["id"], "token": job["token"], "result": 3}
    assert client.post("/worker/complete", json=ok).status_code == 200


def test_an_error_text_with_bad_strings_is_recorded_with_them_replaced(
    client: TestClient, app: Offload
) -> None:
    enqueue(client)
    [job] = fetch(client)
    body = (
        f'{{"id":{job["id"]},"token":"{job["token"]}",'
        '"error":"bad \\ud800 and \\u0000","traceback":"at \\udcff"}'
    )
    r = _post(client, "/worker/fail", body)
    assert r.status_code == 200, r.text
    [entry] = app.get_job(job["id"]).record.errors
    assert (entry["error"], entry["traceback"]) == ("bad \ufffd and \ufffd", "at \ufffd")


# --- rules --------------------------------------------------------------------------------------
RULES = [
    ("where-literal", lambda bad: json.dumps({"kind": "add", "where": f"args.a == {bad}"})),
    ("where-field", lambda bad: json.dumps({"where": f"args[{bad}] == 1"})),
    ("where-raw", lambda bad: json.dumps({"where": 'args.a == "' + json.loads(bad) + '"'})),
    ("kind", lambda bad: '{"kind":' + bad + ',"where":"args.a == 1"}'),
    ("reason", lambda bad: '{"kind":"add","reason":' + bad + "}"),
]


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize(("case", "body"), RULES, ids=[c[0] for c in RULES])
def test_a_rule_with_a_bad_string_is_422_invalid_rule(
    client: TestClient, app: Offload, bad: str, case: str, body: Any
) -> None:
    problem = assert_problem(_post(client, "/rules", body(BAD[bad])), 422, "invalid-rule")
    assert SAYS[bad] in problem["detail"] or "never matches" in problem["detail"], problem
    assert app.rules.list() == []
