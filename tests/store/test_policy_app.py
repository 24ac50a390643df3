"""The policy options through the public API, on every engine: backlog bounds that refuse
sheddable work (`OverloadedError`) but accept critical work, unique jobs that say they are
duplicates, blackhole rules applied at enqueue, and expiring jobs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from offload import ConfigurationError, InvalidRuleError, Offload, OverloadedError, Unique
from offload.app._outbox import Relay, create_table
from offload.store._contract import JobFilter
from offload.testing import drain

from ._helpers import counter, wait_for_clock


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = Offload(store_url, max_backlog={"imports": 3})

    @application.job(queue="imports")
    def import_file(customer_id: int, name: str = "x.csv") -> int:
        return customer_id

    @application.job(max_backlog=2)
    def report(n: int) -> int:
        return n

    @application.job(unique=Unique(keys=["user_id"], period=timedelta(minutes=5)))
    def welcome(user_id: int, text: str = "hi", channel: str = "mail") -> None:
        return None

    application.admission.backlog_refresh = 0.0  # read the depth table on every enqueue
    yield application
    application.close()


def _depth_counted(app: Offload) -> None:
    """What the maintenance leader does every second: recount every bounded backlog."""
    app.store.backlog_refresh()


# --- backlog bounds -----------------------------------------------------------------------
def test_a_queue_past_its_bound_refuses_sheddable_work(app: Offload) -> None:
    for n in range(3):
        app.enqueue("import_file", n)
    _depth_counted(app)

    with pytest.raises(OverloadedError) as refused:
        app.enqueue("import_file", 99)

    error = refused.value
    assert error.retry_after >= 1.0
    assert error.bound == 3
    assert "queue 'imports'" in str(error) and "3" in str(error)
    assert sum(c.count for c in app.store.job_counts()) == 3  # nothing stored


def test_critical_work_is_accepted_past_the_bound(app: Offload) -> None:
    for n in range(3):
        app.enqueue("import_file", n)
    _depth_counted(app)

    job = app.call("import_file", critical=True).enqueue(42)

    assert job.state == "available"
    with pytest.raises(OverloadedError):
        app.call("import_file", critical=False).enqueue(43)


def test_a_job_type_past_its_bound_refuses_work_in_any_queue(app: Offload) -> None:
    app.enqueue("report", 1)
    app.call("report", queue="other").enqueue(2)
    _depth_counted(app)

    with pytest.raises(OverloadedError, match="job type 'report'"):
        app.call("report", queue="third").enqueue(3)
    app.enqueue("import_file", 1)  # other types are not bounded by it


def test_a_batch_that_would_pass_the_bound_is_refused_whole(app: Offload) -> None:
    app.enqueue("import_file", 1)
    _depth_counted(app)
    jt = app.job_type("import_file")

    with pytest.raises(OverloadedError):
        app.enqueue_many([jt.prepare(n) for n in range(3)])
    assert sum(c.count for c in app.store.job_counts()) == 1
    assert len(app.enqueue_many([jt.prepare(n) for n in range(2)])) == 2


def test_refusals_are_counted(app: Offload) -> None:
    for n in range(3):
        app.enqueue("import_file", n)
    _depth_counted(app)
    for _ in range(2):
        with pytest.raises(OverloadedError):
            app.enqueue("import_file", 9)
    app.admission.flush()
    assert counter(app.store, "refused") == 2


def test_work_is_accepted_again_once_the_backlog_drains(app: Offload) -> None:
    for n in range(3):
        app.enqueue("import_file", n)
    _depth_counted(app)
    with pytest.raises(OverloadedError):
        app.enqueue("import_file", 9)

    drain(app, ["imports"])
    _depth_counted(app)
    assert app.enqueue("import_file", 9).state == "available"


def test_bad_bounds_are_refused_when_declared(store_url: str) -> None:
    with pytest.raises(ConfigurationError, match="max_backlog"):
        Offload(store_url, max_backlog={"q": 0})
    app = Offload(store_url)
    with pytest.raises(ConfigurationError, match="max_backlog"):
        app.job(max_backlog=-1)(lambda: None)
    with pytest.raises(ConfigurationError, match="critical"):
        app.job(name="c", critical="yes")(lambda: None)


# --- unique jobs ----------------------------------------------------------------------------
def test_a_duplicate_enqueue_returns_the_existing_job_and_says_so(app: Offload) -> None:
    first = app.enqueue("welcome", 7, "hello")
    again = app.enqueue("welcome", 7, text="other text")  # not a key: still the same job
    other = app.enqueue("welcome", 8)

    assert first.duplicate is False
    assert again.duplicate is True and again.id == first.id
    assert other.duplicate is False and other.id != first.id
    assert app.get_job(first.id).args == {"user_id": 7, "text": "hello"}


def test_unique_by_every_argument_and_per_call(app: Offload) -> None:
    call = app.call("report", unique=True)
    assert call.enqueue(1).duplicate is False
    assert call.enqueue(1).duplicate is True
    assert call.enqueue(2).duplicate is False
    assert app.enqueue("report", 1).duplicate is False  # this call is not unique
    singleton = app.call("report", unique=Unique(keys=[]))
    first = singleton.enqueue(10)
    assert singleton.enqueue(11).id == first.id  # no keys: one pending job of the type


def test_a_unique_key_missing_from_the_arguments_takes_its_default(app: Offload) -> None:
    call = app.call("welcome", unique=Unique(keys=["user_id", "channel"]))
    first = call.enqueue(1)
    assert call.enqueue(1, channel="mail").duplicate is True
    assert call.enqueue(1, channel="sms").id != first.id


def test_a_unique_batch_is_one_transaction(app: Offload) -> None:
    jt = app.job_type("welcome")
    jobs = app.enqueue_many([jt.prepare(1), jt.prepare(2), jt.prepare(1)])
    assert [j.duplicate for j in jobs] == [False, False, True]
    assert jobs[2].id == jobs[0].id


def test_bad_unique_options_are_refused(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="Unique"):
        app.call("welcome", unique="user_id").enqueue(1)
    with pytest.raises(ConfigurationError, match="unknown state"):
        app.call("welcome", unique=Unique(states=["waiting"])).enqueue(1)
    with pytest.raises(ConfigurationError, match="period"):
        app.call("welcome", unique=Unique(period=0)).enqueue(1)


# --- rules at enqueue -------------------------------------------------------------------------
def test_a_job_matching_a_rule_is_stored_shed_at_enqueue(app: Offload) -> None:
    rule = app.rules.add(kind="import_file", where="args.customer_id == 123", reason="floods")

    blocked = app.enqueue("import_file", 123)
    other = app.enqueue("import_file", 124)
    other_kind = app.enqueue("report", 123)

    assert blocked.state == "shed"
    assert blocked.errors[-1]["rule"] == rule.id
    assert "floods" in blocked.errors[-1]["error"]
    assert blocked.record.meta["shed_rule"] == rule.id
    assert (other.state, other_kind.state) == ("available", "available")

    assert app.rules.remove(rule.id) is True
    assert app.enqueue("import_file", 123).state == "available"


def test_rules_are_listed_and_expire(app: Offload) -> None:
    short = app.rules.add(where="args.n == 1", expires=0.05)
    kept = app.rules.add(kind="report", expires=timedelta(hours=1), reason="r")
    assert [r.id for r in app.rules.list()] == [short.id, kept.id]

    wait_for_clock(app.store, short.expires_at or 0)
    assert [r.id for r in app.rules.list()] == [kept.id]
    assert [r.id for r in app.rules.list(include_expired=True)] == [short.id, kept.id]


def test_bad_rules_are_refused_with_the_problem(app: Offload) -> None:
    with pytest.raises(InvalidRuleError, match="function calls"):
        app.rules.add(kind="report", where="len(args.x) > 1")
    with pytest.raises(ConfigurationError, match="kind, a where expression, or both"):
        app.rules.add()
    assert app.rules.list() == []


def test_drain_sheds_claimed_jobs_matching_a_rule(app: Offload) -> None:
    job = app.enqueue("report", 5)
    app.rules.add(kind="report", where="args.n == 5")

    result = drain(app)

    assert result.ran == 0
    assert job.refresh().state == "shed"


# --- expiry -----------------------------------------------------------------------------------
def test_expires_is_relative_to_the_enqueue_or_a_moment(app: Offload) -> None:
    relative = app.call("report", expires=timedelta(hours=1)).enqueue(1)
    at = datetime.now(UTC) + timedelta(hours=2)
    absolute = app.call("report", expires=at).enqueue(2)

    r = relative.record
    assert r.expires_at is not None
    assert abs(r.expires_at - (r.inserted_at + 3600)) < 1e-3
    assert absolute.record.expires_at == pytest.approx(at.timestamp(), abs=1e-3)


def test_a_job_past_its_expiry_is_shed_not_run(app: Offload) -> None:
    late = app.call("report", expires=0.05).enqueue(1)
    wait_for_clock(app.store, late.record.expires_at or 0)
    fresh = app.call("report", expires=3600).enqueue(2)

    result = drain(app)

    assert result.completed == 1
    assert late.refresh().state == "shed"
    assert fresh.refresh().state == "completed"
    assert app.call("report", expires=0).enqueue(3).state == "shed"


def test_bad_expiry_is_refused(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="expires"):
        app.call("report", expires=-1).enqueue(1)
    with pytest.raises(ConfigurationError, match="timezone"):
        app.call("report", expires=datetime(2030, 1, 1)).enqueue(1)


# --- the outbox keeps the policy ----------------------------------------------------------------
def test_staged_jobs_keep_their_expiry_and_uniqueness(app: Offload, tmp_path: Path) -> None:
    source = tmp_path / "appdata.db"
    conn = sqlite3.connect(source, isolation_level=None)
    create_table(conn)
    welcome = app.job_type("welcome")
    conn.execute("BEGIN")
    app.stage(conn, [welcome.options(expires=3600).prepare(1), welcome.prepare(1)])
    conn.execute("COMMIT")
    conn.close()
    staged_at = app.store.now()

    relay = Relay(app, f"sqlite:///{source}")
    assert relay.run_once() == 2
    relay.close()

    [record] = app.store.job_list(JobFilter())  # the second was a duplicate of the first
    assert record.expires_at is not None
    assert abs(record.expires_at - (staged_at + 3600)) < 5
