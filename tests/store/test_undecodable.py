"""Stored data that cannot be decoded: the claim buries such a row in its own transaction and
hands out every other job; readers show the field as undecodable and the rest of the row.

Rows are damaged behind the store's back (tests/store/_raw.py). PostgreSQL's jsonb holds only
valid JSON, so there a field can only have the wrong shape; text that is not JSON and bytes
that are not UTF-8 are SQLite's cases, run on SQLite alone.
"""

from __future__ import annotations

import pytest

from offload.dispatch._limits import LimitSpec
from offload.store._contract import ClaimParams, Completion, Failure, JobFilter, Store
from offload.store._totals import span_edge

from ._helpers import claim, claim_one, counter, get, insert, new_job
from ._raw import overwrite, stored

SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _assert_buried(store: Store, bad: int, *words: str) -> str:
    record = get(store, bad)
    assert record.state == "dead"
    assert record.attempt == 1
    assert record.lease_owner is None and record.lease_expires_at is None
    assert record.finished_at is not None
    assert len(record.errors) == 1
    entry = record.errors[0]
    assert entry["kind"] == "undecodable" and entry["attempt"] == 1
    error = str(entry["error"])
    assert error.startswith("PayloadDecodeError: "), error
    for word in words:
        assert word in error, error
    assert counter(store, "undecodable") == 1
    return error


# --- the claim --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("args", "[1, 2, 3]", ("arguments are a JSON array, not an object", "begins '[1")),
        ("args", '"a string"', ("arguments are a JSON string, not an object",)),
        ("args", "null", ("arguments are a JSON null, not an object",)),
        ("meta", "[]", ("meta is a JSON array, not an object",)),
    ],
)
def test_a_row_of_the_wrong_shape_is_dead_at_its_first_claim(
    store: Store, column: str, value: str, words: tuple[str, ...]
) -> None:
    first, bad, last = insert(store, new_job(args={"n": 1}), new_job(args={"n": 2}), new_job())
    overwrite(store, bad, column, value)
    got = claim(store, limit=10)
    assert [j.id for j in got] == [first, last]
    assert got[0].args == {"n": 1}
    _assert_buried(store, bad, *words)
    assert get(store, first).state == get(store, last).state == "running"


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("args", '{"broken', ("arguments are not valid JSON (Unterminated string", "'{\"broken'")),
        ("args", b'{"n":"\xff"}', ("arguments are not valid UTF-8", 'b\'{"n":"\\xff"}\'')),
        ("args", "NaN", ("arguments are not valid JSON (NaN is not JSON)",)),
        ("meta", "{]", ("meta is not valid JSON",)),
        ("meta", b'{"\xc3"}', ("meta is not valid UTF-8",)),
        ("kind", b"k\xff", ("the job type name is not valid UTF-8",)),
    ],
)
def test_text_that_cannot_be_decoded_is_dead_at_its_first_claim(
    store: Store, column: str, value: str | bytes, words: tuple[str, ...]
) -> None:
    first, bad, last = insert(store, new_job(args={"n": 1}), new_job(args={"n": 2}), new_job())
    overwrite(store, bad, column, value)
    assert [j.id for j in claim(store, limit=10)] == [first, last]
    _assert_buried(store, bad, *words)
    raw = value if isinstance(value, bytes) else value.encode()
    assert stored(store, bad, column) == raw, "the stored payload must be kept as it was"


def test_acknowledgements_riding_with_the_claim_are_kept(store: Store) -> None:
    done, failed, bad, good = insert(store, new_job(), new_job(), new_job(), new_job())
    a, b = claim(store, limit=2)
    overwrite(store, bad, "args", "[]")
    acked = store.job_ack_claim(
        [Completion(a.id, a.lease_token, {"ok": True})],
        [Failure(b.id, b.lease_token, "boom", "", 5.0)],
        ClaimParams(["default"], 10, "w1", 600.0),
    )
    assert (acked.completed.applied, acked.failed.applied) == (1, 1)
    assert [j.id for j in acked.claimed] == [good]
    assert get(store, done).state == "completed"
    assert get(store, failed).state == "retryable"
    _assert_buried(store, bad, "arguments are a JSON array")


def test_a_bad_row_with_a_limit_key_is_dead_at_its_claim_through_limits(store: Store) -> None:
    spec = LimitSpec(concurrency=5)
    bad, good = insert(
        store, new_job(limit_key="k", limit=spec), new_job(limit_key="k", limit=spec)
    )
    overwrite(store, bad, "args", "[1]")
    assert [j.id for j in claim(store, limit=10)] == [good]
    _assert_buried(store, bad, "arguments are a JSON array")


def test_a_claim_goes_on_for_the_places_bad_rows_took(store: Store) -> None:
    bad = insert(store, *[new_job() for _ in range(3)])
    good = insert(store, new_job(), new_job())
    for job_id in bad:
        overwrite(store, job_id, "args", "[]")
    assert [j.id for j in claim(store, limit=1)] == good[:1]
    assert [j.id for j in claim(store, limit=5)] == good[1:]
    assert [get(store, i).state for i in bad] == ["dead"] * 3
    assert counter(store, "undecodable") == 3


def test_a_bad_row_alone_leaves_the_queue_claimable(store: Store) -> None:
    (bad,) = insert(store, new_job())
    overwrite(store, bad, "args", "[]")
    assert claim(store, limit=1) == []
    _assert_buried(store, bad)
    (later,) = insert(store, new_job())
    assert claim_one(store).id == later


# --- readers ----------------------------------------------------------------------------
def _finished(store: Store) -> int:
    """A completed job with a result and one error entry (it failed once, then succeeded)."""
    job_id = insert(store, new_job(args={"x": 1}, meta={"tag": "t"}))[0]
    first = claim_one(store)
    store.job_fail_many([Failure(first.id, first.lease_token, "boom", "", 0.0)])
    store.job_retry(job_id)
    second = claim_one(store)
    store.job_complete_many([Completion(second.id, second.lease_token, {"r": 1})])
    return job_id


@pytest.mark.parametrize(
    ("column", "value", "empty", "words"),
    [
        ("errors", '{"error": "x"}', [], "the errors list is a JSON object, not an array"),
        ("errors", '[1, {"error": "x"}]', [], "entry 0 is a JSON number, not an object"),
        ("meta", '["m"]', {}, "meta is a JSON array, not an object"),
        ("args", '"s"', {}, "arguments are a JSON string, not an object"),
    ],
)
def test_a_reader_shows_a_field_of_the_wrong_shape_and_the_rest_of_the_row(
    store: Store, column: str, value: str, empty: object, words: str
) -> None:
    job_id = _finished(store)
    overwrite(store, job_id, column, value)
    for record in (get(store, job_id), store.job_list(JobFilter())[0]):
        assert record.id == job_id and record.state == "completed"
        assert getattr(record, column) == empty
        assert set(record.undecodable) == {column}
        bad = record.undecodable[column]
        assert words in bad.error and bad.error.startswith("PayloadDecodeError: ")
        assert bad.raw.replace(" ", "") == value.replace(" ", "")
        assert record.result == {"r": 1}
        if column != "args":
            assert record.args == {"x": 1}


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("result", '{"r": tru', "the result is not valid JSON"),
        ("result", b'{"r":"\xff\xfe"}', "the result is not valid UTF-8"),
        ("errors", "[{", "the errors list is not valid JSON"),
        ("meta", b"\xff", "meta is not valid UTF-8"),
        ("kind", b"k\xff", "the job type name is not valid UTF-8"),
    ],
)
def test_a_reader_shows_text_that_cannot_be_decoded_and_the_rest_of_the_row(
    store: Store, column: str, value: str | bytes, words: str
) -> None:
    job_id = _finished(store)
    overwrite(store, job_id, column, value)
    for record in (get(store, job_id), store.job_list(JobFilter())[0]):
        assert record.state == "completed" and record.args == {"x": 1}
        assert set(record.undecodable) == {column}
        bad = record.undecodable[column]
        assert words in bad.error
        expected = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
        assert bad.raw == expected
    assert get(store, job_id).kind == ("k\ufffd" if column == "kind" else "k")


def test_a_reader_bounds_the_raw_text_it_shows(store: Store) -> None:
    job_id = _finished(store)
    overwrite(store, job_id, "meta", "[" + ",".join(["1"] * 5000) + "]")
    bad = get(store, job_id).undecodable["meta"]
    assert len(bad.raw) == 1000
    assert len(bad.error) < 200


# --- appending an error entry to an errors column that is not a JSON array --------------
@SQLITE_ONLY
def test_a_failure_is_recorded_on_a_job_whose_errors_cannot_be_decoded(store: Store) -> None:
    bad, other = insert(store, new_job(), new_job())
    a, b = claim(store, limit=2)
    overwrite(store, bad, "errors", '[{"broken')
    failed = store.job_fail_many(
        [Failure(a.id, a.lease_token, "first", "", 1.0), Failure(b.id, b.lease_token, "x", "", 1.0)]
    )
    assert failed.applied == 2, "one bad errors column must not fail the whole batch"
    errors = get(store, bad).errors
    assert errors[0]["kind"] == "undecodable" and errors[0]["raw"] == '[{"broken'
    assert errors[1]["error"] == "first"
    assert get(store, other).errors[0]["error"] == "x"


def _count_retryable_with_errors(store: Store, value: str) -> int:
    """The failure was counted when it happened (the kept spans); a `since` inside the span of
    the failure reads the damaged row's last error instead (the cut span: see
    `job_finished_since`), which counts nothing and raises nothing."""
    (job_id,) = insert(store, new_job())
    job = claim_one(store)
    before = store.now()
    store.job_fail_many([Failure(job.id, job.lease_token, "boom", "", 600.0)])
    after = store.now()
    overwrite(store, job_id, "errors", value)
    assert store.job_finished_since(0.0)["retryable"] == 1
    counted = store.job_finished_since(before)["retryable"]
    return counted if span_edge(before) == span_edge(after) else 0  # a span began meanwhile


@pytest.mark.parametrize("value", ['[{"at": "yesterday"}]', '{"at": 1}'])
def test_counting_retryable_jobs_survives_errors_of_any_shape(store: Store, value: str) -> None:
    assert _count_retryable_with_errors(store, value) == 0


@SQLITE_ONLY
def test_counting_retryable_jobs_survives_errors_that_are_not_json(store: Store) -> None:
    assert _count_retryable_with_errors(store, '[{"at": 1') == 0
