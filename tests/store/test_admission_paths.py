"""Every enqueue path admits jobs alike, on every engine: backlog bounds (`max_backlog` of a
queue or a job type) and blackhole rules apply to the outbox relay and to cron ticks as they do
to `enqueue` (HTTP: tests/server/test_admission_api.py; the CLI: tests/acceptance)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import Offload, OverloadedError
from offload.app._outbox import Relay, create_table
from offload.maintenance._scheduler import Scheduler
from offload.store._contract import JobFilter

from ._helpers import counter

# A tick that stays the latest one for a year, so that no new tick comes during a test; the
# scheduler is made with a grace long enough to fire it although it is months old.
YEARLY = "0 0 1 1 *"
GRACE = 400 * 86400.0


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = Offload(store_url, max_backlog={"imports": 2})

    @application.job(queue="imports")
    def import_file(n: int) -> int:
        return n

    @application.job()
    def report(n: int) -> int:
        return n

    @application.job(queue="imports", cron=YEARLY)
    def nightly() -> None:
        return None

    @application.job(cron=YEARLY, max_backlog=1)
    def hourly() -> None:
        return None

    application.admission.backlog_refresh = 0.0  # read the depth table on every enqueue
    yield application
    application.close()


def _full(app: Offload) -> None:
    """Two jobs in the bounded queue, counted as the maintenance leader counts them."""
    app.enqueue("import_file", 0)
    app.enqueue("import_file", 1)
    app.store.backlog_refresh()
    with pytest.raises(OverloadedError):
        app.enqueue("import_file", 2)  # as a direct enqueue sees it


def _emptied(app: Offload, queue: str) -> None:
    for record in app.store.job_list(JobFilter(queue=queue)):
        app.store.job_cancel(record.id)
    app.store.backlog_refresh()


def _kinds(app: Offload, state: str) -> list[str]:
    return sorted(r.kind for r in app.store.job_list(JobFilter(states=[state])))


# --- the outbox relay ---------------------------------------------------------------------------
def _stage(app: Offload, source: Path, *jobs: tuple[str, int]) -> None:
    conn = sqlite3.connect(source, isolation_level=None)
    create_table(conn)
    conn.execute("BEGIN")
    app.stage(conn, [app.job_type(kind).prepare(n) for kind, n in jobs])
    conn.execute("COMMIT")
    conn.close()


def test_the_relay_holds_back_staged_jobs_over_a_bound_until_they_fit(
    app: Offload, tmp_path: Path
) -> None:
    _full(app)
    source = tmp_path / "appdata.db"
    _stage(app, source, ("import_file", 10), ("report", 11), ("import_file", 12))
    relay = Relay(app, f"sqlite:///{source}")
    try:
        assert relay.run_once() == 1  # the report; the two imports stay staged
        assert (relay.held, relay.pending()) == (2, 2)
        assert relay.retry_after >= 1.0
        assert _kinds(app, "available") == ["import_file", "import_file", "report"]

        _emptied(app, "imports")
        assert relay.run_once() == 2
        assert (relay.held, relay.retry_after, relay.pending()) == (0, 0.0, 0)
    finally:
        relay.close()
    assert sorted(r.args["n"] for r in app.store.job_list(JobFilter(states=["available"]))) == [
        10,
        11,
        12,
    ]


def test_the_relay_stores_jobs_matching_a_rule_shed(app: Offload, tmp_path: Path) -> None:
    app.rules.add(kind="report", where="args.n == 7", reason="not this one")
    source = tmp_path / "appdata.db"
    _stage(app, source, ("report", 7), ("report", 8))
    relay = Relay(app, f"sqlite:///{source}")
    try:
        assert relay.run_once() == 2
    finally:
        relay.close()
    by_n = {r.args["n"]: r.state for r in app.store.job_list(JobFilter())}
    assert by_n == {7: "shed", 8: "available"}


# --- cron ---------------------------------------------------------------------------------------
def _ticks(app: Offload, kind: str) -> list[str]:
    return [r.state for r in app.store.job_list(JobFilter(kind=kind))]


def test_a_cron_tick_over_a_bound_is_held_back_until_it_fits(app: Offload) -> None:
    _full(app)
    app.admission.flush()
    refused_before = counter(app.store, "refused")
    scheduler = Scheduler(every=0.5, grace=GRACE)

    assert scheduler.run(app) == 1  # hourly fires; nightly's queue is full
    assert _ticks(app, "nightly") == [] and _ticks(app, "hourly") == ["available"]
    assert scheduler.run(app) == 0  # tried again, still held, counted once
    app.admission.flush()
    assert counter(app.store, "refused") == refused_before + 1

    _emptied(app, "imports")
    assert scheduler.run(app) == 1
    assert scheduler.run(app) == 0  # once per tick
    assert _ticks(app, "nightly") == ["available"]


def test_a_cron_tick_of_a_type_past_its_own_bound_is_held_back(app: Offload) -> None:
    app.enqueue("hourly")
    app.store.backlog_refresh()
    scheduler = Scheduler(every=0.5, grace=GRACE)
    scheduler.run(app)
    assert _ticks(app, "hourly") == ["available"]  # the one enqueued; the tick is held


def test_a_cron_tick_matching_a_rule_is_stored_shed(app: Offload) -> None:
    app.rules.add(kind="nightly", reason="paused")
    assert Scheduler(every=0.5, grace=GRACE).run(app) == 2
    assert _ticks(app, "nightly") == ["shed"]
    assert _ticks(app, "hourly") == ["available"]
