"""`offload jobs list / show` (and `--json`) on jobs whose stored data cannot be decoded: the
field shows as undecodable with the start of its stored text, the rest of the job normally,
and the command succeeds."""

from __future__ import annotations

from offload.store._contract import ClaimParams, Completion, Failure, NewJob
from tests.store._raw import overwrite

from ._helpers import CLI, opened


def _damaged(url: str) -> tuple[int, int]:
    """A completed job whose result is not UTF-8, and a dead one whose meta is not JSON and
    whose errors list holds an entry of another shape."""
    with opened(url) as store:
        done, dead = (i.id for i in store.job_insert_many([NewJob("add", "default", {"a": 1})] * 2))
        first, second = store.job_claim(ClaimParams(["default"], 2, "w", 60.0))
        store.job_complete_many([Completion(first.id, first.lease_token, 3)])
        store.job_fail_many([Failure(second.id, second.lease_token, "RuntimeError: boom")])
        overwrite(store, done, "result", b"\xff\xfe3")
        overwrite(store, dead, "meta", '{"tag": ')
        overwrite(store, dead, "errors", '[{"exc_module": "os", "exc_type": "system"}]')
    return done, dead


def test_list_and_show_read_what_cannot_be_decoded(cli: CLI, fresh_url: str) -> None:
    done, dead = _damaged(fresh_url)
    listed = cli("jobs", "list", "--url", fresh_url).out
    assert f"{done}" in listed and "completed" in listed and "dead" in listed
    assert "exc_module" in listed  # an entry of another shape, shown as the data it is

    records = {r["id"]: r for r in cli("jobs", "list", "--url", fresh_url, "--json").json()}
    assert records[done]["result"] is None and records[done]["args"] == {"a": 1}
    bad = records[done]["undecodable"]["result"]
    assert "the result is not valid UTF-8" in bad["error"] and bad["raw"] == "\\xff\\xfe3"
    assert records[dead]["meta"] is None
    assert "meta is not valid JSON" in records[dead]["undecodable"]["meta"]["error"]
    assert records[dead]["errors"] == [{"exc_module": "os", "exc_type": "system", "at": None}]

    shown = cli("jobs", "show", str(done), "--url", fresh_url).out
    assert "result      cannot be decoded: PayloadDecodeError: the result is not valid UTF-8" in (
        shown
    )
    assert "raw: \\xff\\xfe3" in shown and '{"a": 1}' in shown
    shown = cli("jobs", "show", str(dead), "--url", fresh_url).out
    assert "meta        cannot be decoded: PayloadDecodeError: meta is not valid JSON" in shown
    assert '"exc_module": "os"' in shown
    data = cli("jobs", "show", str(dead), "--url", fresh_url, "--json").json()
    assert data["meta"] is None and set(data["undecodable"]) == {"meta"}
    assert data["undecodable"]["meta"]["raw"] == '{"tag": '
