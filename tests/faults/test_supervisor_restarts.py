"""The supervisor's restart policy (`offload worker --processes N`), with real processes.

A child that dies soon after it started is restarted after a pause that keeps doubling, so a
crash loop slows down and stays slow (the pause used to shrink back to half a second while the
new child ran its first second). A child that exits 2 (its command line or configuration is
wrong) or 3 (the store is damaged) is never restarted: the supervisor stops and exits so.
"""

from __future__ import annotations

import re

import pytest

from offload import Offload
from tests.integration._harness import Procs, wait_until

from ._ledger import Ledger
from .conftest import APP


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    """SQLite only: the policy is the supervisor's, whatever the store."""
    return sqlite_url


def pauses(log: str) -> dict[int, list[float]]:
    """The restart pauses the supervisor logged, per worker slot, in order."""
    found: dict[int, list[float]] = {}
    for slot, pause in re.findall(
        r"worker process (\d+) exited with .*restarting in ([\d.]+)s", log
    ):
        found.setdefault(int(slot), []).append(float(pause))
    return found


def test_children_that_die_soon_after_starting_are_restarted_ever_more_slowly(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    # Each child takes one job at a time and none ahead: its first poison pill kills it.
    for i in range(12):
        ledger.enqueue(app, "poison", f"pill-{i}")
    supervisor = procs.worker(
        "--processes", "2", "--prefetch", "0", concurrency=1, maintenance=False, app=APP
    )
    wait_until(
        lambda: (
            all(len(p) >= 3 for p in pauses(supervisor.log()).values())
            and len(pauses(supervisor.log())) == 2
        ),
        timeout=60,
        what="both slots to be restarted three times",
        explain=supervisor.tail,
    )
    for slot, seen in pauses(supervisor.log()).items():
        assert seen[:3] == [0.5, 1.0, 2.0], f"slot {slot} paused {seen}"


def test_a_child_that_exits_with_a_usage_error_is_not_restarted(procs: Procs) -> None:
    # The supervisor of children whose app cannot be imported (exit 2); the command line
    # would refuse such an app before starting any, so the supervisor is run directly.
    code = (
        "import logging, sys; from offload.worker import Supervisor; "
        "logging.basicConfig(level=logging.INFO); "
        "sys.exit(Supervisor(2, ['worker', 'no_such_module:app']).run())"
    )
    supervisor = procs.start(["-c", code], name="supervisor")
    assert supervisor.wait_exit(timeout=60) == 2, supervisor.tail()
    log = supervisor.log()
    assert log.count("started worker process") == 2, supervisor.tail()
    assert "its command line or configuration is wrong" in log
    assert "restarting" not in log
