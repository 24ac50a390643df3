"""Bad strings in a job's data, on every engine alike: a NUL character or a lone surrogate in
arguments or meta (values or keys) is refused at enqueue with `InvalidTextError` naming its
path, before the store is touched; in a result it fails that attempt, and the acknowledgements
riding in the same batch still apply; in an error message it is replaced, not fatal."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import pytest

from offload import InvalidArgumentsError, InvalidTextError, Offload
from offload.store._contract import ClaimParams, JobFilter
from offload.worker import Executor, Outcome
from offload.worker._ack import to_acks
from tests._wait import eventually

NUL = "a\x00b"
SURROGATE = "x\ud800y"
BAD = {"nul": NUL, "surrogate": SURROGATE}
SAYS = {"nul": "NUL character", "surrogate": "lone surrogate"}
RESULTS: dict[str, Any] = {
    "fine": "ok",
    "nul": NUL,
    "surrogate": ["x", {"k": SURROGATE}],
    "key": {"\ud83d": 1},
}


def _declare(app: Offload) -> Offload:
    @app.job()
    def take(items: list[Any] | None = None, label: str = "", **extra: Any) -> None:
        return None

    @app.job(max_attempts=2)
    def answer(which: str) -> Any:
        return RESULTS[which]

    @app.job(max_attempts=2)
    def complain() -> None:
        raise ValueError("could not parse 'caf\udce9' \x00 here")

    return app


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = _declare(Offload(store_url))
    yield application
    application.close()


def _stored(app: Offload) -> int:
    return sum(c.count for c in app.store.job_counts())


# --- enqueue ------------------------------------------------------------------------------
PLACES = [
    ("label", lambda bad: {"label": bad}, "args.label"),
    ("nested", lambda bad: {"items": [1, 2, {"name": bad}]}, "args.items[2].name"),
    ("key", lambda bad: {"items": [{bad: 1}]}, "args.items[0]"),
    ("extra", lambda bad: {"odd name": bad}, 'args.extra["odd name"]'),
    ("extra-key", lambda bad: {bad: 1}, "args.extra"),
]


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize(("place", "build", "path"), PLACES, ids=[p[0] for p in PLACES])
def test_a_bad_string_anywhere_in_the_arguments_is_refused_before_the_store(
    app: Offload, bad: str, place: str, build: Any, path: str
) -> None:
    with pytest.raises(InvalidTextError) as refused:
        app.enqueue("take", **build(BAD[bad]))

    error = refused.value
    assert isinstance(error, InvalidArgumentsError)
    assert error.path == path
    assert SAYS[bad] in str(error) and path in str(error)
    assert app._store is None  # refused before the store was opened


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_bad_string_in_meta_is_refused_with_its_path(app: Offload, bad: str) -> None:
    take = app.call("take", meta={"trace": {"id": BAD[bad]}})
    with pytest.raises(InvalidTextError, match=SAYS[bad]) as refused:
        take.enqueue()
    assert refused.value.path == "meta.trace.id"

    with pytest.raises(InvalidTextError) as refused:
        app.call("take", meta={BAD[bad]: 1}).enqueue()
    assert refused.value.path == "meta"
    assert app._store is None


def test_a_bad_unique_key_is_refused(app: Offload) -> None:
    with pytest.raises(InvalidTextError, match="unique_key"):
        app.call("take", unique_key=NUL).enqueue()
    assert app._store is None


def test_a_bulk_enqueue_with_one_bad_job_stores_none(app: Offload) -> None:
    take = app.job_type("take")
    with pytest.raises(InvalidTextError) as refused:
        app.enqueue_many([take.prepare(label="fine"), take.prepare(items=[SURROGATE])])
    assert refused.value.path == "args.items[0]"
    assert _stored(app) == 0


def test_a_bad_string_is_refused_before_the_callers_transaction_is_used(app: Offload) -> None:
    store = app.store
    if store.engine == "sqlite":
        conn: Any = sqlite3.connect(urlparse(store.url).path, isolation_level=None)
        conn.execute("BEGIN")
    else:
        import psycopg

        parts = urlparse(store.url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
        conn = psycopg.connect(urlunparse(parts._replace(query=query)))
    try:
        with pytest.raises(InvalidTextError):
            app.call("take", connection=conn).enqueue(label=NUL)
        # the caller's transaction is untouched and goes on
        app.call("take", connection=conn).enqueue(label="fine")
        conn.commit()
    finally:
        conn.close()
    assert [r.args for r in store.job_list(JobFilter())] == [{"label": "fine"}]


GOOD = ["é", "🎉", "\x01\x1f", "\\u0000", "tab\there", "\ufffd", "e+1", "\u2028"]


def test_strings_both_engines_keep_are_stored_and_read_back_as_given(app: Offload) -> None:
    job = app.enqueue("take", items=GOOD, label="".join(GOOD), **{k: k for k in GOOD})
    assert job.refresh().record.args == {
        "items": GOOD,
        "label": "".join(GOOD),
        "extra": {k: k for k in GOOD},
    }


# --- results and errors -------------------------------------------------------------------
def _run_one_batch(app: Offload, ids: list[int]) -> list[Outcome]:
    """Claim the jobs, run them on the executor, and acknowledge every outcome in one store
    cycle, as a worker does."""
    claimed = app.store.job_claim(ClaimParams(["default"], len(ids), "w1", 60.0))
    assert sorted(j.id for j in claimed) == sorted(ids)
    outcomes: list[Outcome] = []
    executor = Executor(app, len(claimed), outcomes.append)
    try:
        for job in claimed:
            executor.submit(job)
        eventually(  # each run reports its outcome when it ends
            lambda: len(outcomes) == len(claimed),
            timeout=10.0,
            interval=0.005,
            what=f"{len(claimed)} outcomes",
            explain=lambda: f"{len(outcomes)} of {len(claimed)} ran",
        )
    finally:
        executor.close()
    done, failed = to_acks(app, outcomes)
    ack = app.store.job_ack_claim(done, failed, None)
    assert (ack.completed.applied, ack.failed.applied) == (len(done), len(failed))
    return outcomes


def test_a_bad_result_fails_its_attempt_and_the_batch_still_applies(app: Offload) -> None:
    ids = {which: app.enqueue("answer", which).id for which in RESULTS}
    ids["complain"] = app.enqueue("complain").id

    _run_one_batch(app, list(ids.values()))

    fine = app.get_job(ids["fine"]).record
    assert (fine.state, fine.result) == ("completed", "ok")
    for which, path in [("nul", "result"), ("surrogate", "result[1].k"), ("key", "result")]:
        record = app.get_job(ids[which]).record
        assert record.state == "retryable", (which, record.state)
        error = record.errors[-1]["error"]
        assert error.startswith("InvalidTextError: the result of answer()"), error
        assert f"at {path}" in error or f"of {path}" in error, error
        assert record.result is None
    complained = app.get_job(ids["complain"]).record
    assert complained.state == "retryable"
    assert complained.errors[-1]["error"] == "ValueError: could not parse 'caf\ufffd' \ufffd here"
    assert "\ufffd" in complained.errors[-1]["traceback"]
