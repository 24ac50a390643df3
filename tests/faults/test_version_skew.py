"""F5, version skew: workers and producers of two versions of a job type share one store.

What a user of Celery or Sidekiq expects, and what offload does today (docs/stored-data.md):
stored arguments that do not fit the worker's version of the function fail the attempt before
the function runs, with `InvalidArgumentsError` naming the argument. The attempt is retried
with the job type's backoff, never discarded, and the job completes once a worker of a version
that fits claims it. (a) A newer producer adds an optional argument that an old worker does not
take; (b) an old producer's job meets a newer worker that requires an argument it lacks.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from offload import InvalidArgumentsError, Offload, PayloadDecodeError
from offload.jobs._signature import Signature
from offload.testing import drain
from tests.integration._harness import Procs, wait_until

from . import skew_v1, skew_v2
from ._ledger import Ledger, check, record_figures

JOBS = 20


def _skewed(
    store_url: str,
    procs: Procs,
    ledger: Ledger,
    *,
    kind: str,
    producer: Offload,
    old: str,
    new: str,
    argument: str,
    **kwargs: Any,
) -> tuple[Offload, list[str]]:
    """Jobs of `producer` run first by workers of `old` (they fail, naming `argument`), then
    by a worker of `new` (they complete); the app to check with and the keys."""
    first = procs.worker(concurrency=4, app=old, name="mismatched")
    first.wait_log("running queues")
    keys = [f"{kind}-{i}" for i in range(JOBS)]
    ids = [ledger.enqueue(producer, kind, key, **kwargs) for key in keys]
    store = producer.store

    def all_failed_once() -> bool:
        records = [store.job_get(i) for i in ids if i is not None]
        return all(r is not None and r.errors for r in records)

    wait_until(all_failed_once, what=f"every {kind} job to fail once on the {old} worker")
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    for job_id in ids:
        record = store.job_get(job_id) if job_id is not None else None
        assert record is not None
        assert record.state in ("retryable", "available", "scheduled"), record
        error = str(record.errors[0]["error"])
        assert error.startswith("InvalidArgumentsError: "), error
        assert repr(argument) in error, error
        assert record.errors[0]["traceback"] == "", "the job's code never ran"
        times = [float(e["at"]) for e in record.errors]
        waits = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(w >= skew_v1.BACKOFF * 0.9 for w in waits), f"retried without backoff: {waits}"
    assert not ledger.keys("start"), "a job ran on a worker whose version does not fit it"
    second = procs.worker(concurrency=4, app=new, name="matching")
    wait_until(lambda: len(ledger.keys("end")) == JOBS, what=f"every {kind} job to complete")
    second.signal(signal.SIGTERM)
    assert second.wait_exit() == 0
    return producer, keys


def test_an_old_worker_retries_a_job_with_an_argument_it_does_not_take(
    store_url: str, procs: Procs, ledger: Ledger, engine: str
) -> None:
    producer = skew_v2.make_app(store_url)  # (a): the newer producer
    app, keys = _skewed(
        store_url,
        procs,
        ledger,
        kind="skew.greet",
        producer=producer,
        old="tests.faults.skew_v1:app",
        new="tests.faults.skew_v2:app",
        argument="loud",
        loud=True,
    )
    verdict = check(ledger, app)
    verdict.assert_holds()
    assert set(verdict.ended) == set(keys)
    ids = [x.job_id for x in ledger.lines() if x.event == "ok"]
    assert {_result(app, i) for i in ids} == {"v2 loud"}, "the new argument reached the job"
    record_figures("F5 version skew (a): newer producer, old worker", engine, verdict)
    producer.close()


def test_a_new_worker_retries_an_old_job_that_lacks_a_required_argument(
    store_url: str, procs: Procs, ledger: Ledger, engine: str
) -> None:
    producer = skew_v1.make_app(store_url)  # (b): the older producer
    app, keys = _skewed(
        store_url,
        procs,
        ledger,
        kind="skew.bill",
        producer=producer,
        old="tests.faults.skew_v2:app",
        new="tests.faults.skew_v1:app",
        argument="currency",
    )
    verdict = check(ledger, app)
    verdict.assert_holds()
    assert set(verdict.ended) == set(keys)
    record_figures("F5 version skew (b): older producer, new worker", engine, verdict)
    producer.close()


def _result(app: Offload, job_id: int | None) -> Any:
    record = app.store.job_get(job_id or 0)
    assert record is not None and record.state == "completed", record
    return record.result


# --- binding stored arguments, in one process ---------------------------------------------
def test_unknown_stored_arguments_go_to_a_functions_keyword_arguments(app: Offload) -> None:
    seen: dict[str, Any] = {}

    @app.job(name="skew.open")
    def open_ended(key: str, **extra: Any) -> None:
        seen.update(extra, key=key)

    newer = Offload(app.config.url)

    @newer.job(name="skew.open")
    def open_ended_v2(key: str, added: int = 0, **extra: Any) -> None: ...

    newer.enqueue("skew.open", key="k", added=3, other="o")
    assert drain(app).completed == 1
    assert seen == {"key": "k", "added": 3, "other": "o"}
    newer.close()


def _f(a: int, b: int = 2, *, c: int) -> None: ...


@pytest.mark.parametrize(
    ("stored", "error", "words"),
    [
        ({"a": 1, "c": 3, "d": 4}, InvalidArgumentsError, "got argument 'd'"),
        ({"a": 1}, InvalidArgumentsError, "missing required argument 'c'"),
        ({"c": 3}, InvalidArgumentsError, "missing required argument 'a'"),
        ([1, 2], PayloadDecodeError, "not an object"),
        ("x", PayloadDecodeError, "not an object"),
    ],
)
def test_stored_arguments_that_do_not_fit_raise_a_typed_error(
    stored: Any, error: type[Exception], words: str
) -> None:
    signature = Signature(_f, "f")
    with pytest.raises(error, match=words) as raised:
        signature.call_args(stored)
    if isinstance(raised.value, InvalidArgumentsError):
        assert raised.value.argument == words.split("'")[1]
    assert signature.call_args({"a": 1, "c": 3}) == ([1], {"c": 3})
    assert signature.call_args({"a": 1, "b": 5, "c": 3}) == ([1, 5], {"c": 3})
