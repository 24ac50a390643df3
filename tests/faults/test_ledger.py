"""The checker itself: it must be able to fail, and a clean run must pass it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from offload import Offload
from tests.integration._harness import Procs, wait_until

from ._ledger import Ledger, Verdict, check, record_figures
from .conftest import APP


def test_the_checker_counts_each_kind_of_anomaly(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    for key in ("a", "b", "c", "d"):
        ledger.note("invoke", key)
    ledger.note("ok", "a", 1)
    ledger.note("ok", "b", 2)
    ledger.note("info", "c")
    ledger.note("fail", "d")
    for event, key in [("start", "a"), ("end", "a"), ("start", "a"), ("end", "a")]:
        ledger.note(event, key)
    ledger.note("start", "c")
    ledger.note("end", "c")
    ledger.note("start", "zz")  # never enqueued
    lines = ledger.lines()
    verdict = Verdict(
        {x.key for x in lines if x.event == "invoke"},
        {x.key for x in lines if x.event == "ok"},
        ledger.keys("start"),
        ledger.keys("end"),
        {7: "running"},
        {"a", "b"},
    )
    assert verdict.lost == {"b"}
    assert verdict.unexpected == {"zz"}
    assert verdict.duplicated == {"a"}
    assert verdict.restarted == {"a"}
    assert verdict.recovered == {"c"}
    assert verdict.figures()["stuck"] == 1
    with pytest.raises(AssertionError, match="lost 1"):
        verdict.assert_holds(max_duplicated=1)


def test_a_clean_run_of_a_worker_passes_the_checker(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    keys = [f"job-{i}" for i in range(50)]
    for key in keys:
        ledger.enqueue(app, "work", key)
    worker = procs.worker(concurrency=4, app=APP)
    wait_until(lambda: len(ledger.keys("end")) == len(keys), what="every job to end")
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0
    verdict = check(ledger, app)
    verdict.assert_holds()
    assert verdict.figures()["jobs"] == 50
    record_figures("ledger: clean run", engine, verdict)
