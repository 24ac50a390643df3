"""Wall-clock jumps (catalogue D1): a worker's clock steps an hour forward and back mid-run.

The worker runs under libfaketime (Debian's `faketime` package, see `_fakeclock.py`) with its
offset in a file that the test rewrites, so the jump happens while it runs. Only the wall clock
jumps, as when NTP steps a machine's clock: the monotonic clock, which the ledger's times use,
goes on undisturbed.

The worker is the maintenance leader, so its clock is the one that promotes, rescues and fires
cron. What each engine promises differs, since the store's clock does:
- PostgreSQL stamps every time with the database server's clock, so a worker's wall clock does
  not matter: no lease is stolen, no retry or delayed job runs early, cron fires once per tick.
- SQLite's clock is the machine's (every process on one file runs on one machine), so the test
  jumps every process's clock together, the test's own store calls included. No lease is stolen
  and cron fires at most once per tick; but a forward step makes delayed and retrying jobs due
  that much earlier, and a backward step holds them (and cron) back by as much, since their
  times are absolute (docs/reliability.md).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from offload import Offload
from offload.maintenance._scheduler import Scheduler
from tests.integration._harness import Procs, all_jobs, wait_until

from ._fakeclock import FakeClock, offload_argv
from ._ledger import Ledger, Verdict, check, record_figures
from .faultapp import LEASE_SECONDS, MAINTENANCE_INTERVAL
from .timeapp import RETRY_BACKOFF, make_app

TIME_APP = "tests.faults.timeapp:app"
HOUR = 3600
DELAY = 3.0  # seconds a delayed job waits: it must not start sooner


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The clock tests' app (overrides the fault app of conftest.py)."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


def _ticks(workdir: Path) -> int:
    try:
        return len((workdir / "ticks").read_text().splitlines())
    except FileNotFoundError:
        return 0


def _let_a_lease_pass(what: str) -> None:
    """Give the jumped clock a whole lease and a few maintenance rounds to do harm: a lease
    wrongly taken for expired would be rescued within that time."""
    until = time.monotonic() + LEASE_SECONDS + 3 * MAINTENANCE_INTERVAL
    wait_until(lambda: time.monotonic() >= until, what=what)


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
@pytest.mark.parametrize(
    "steps",
    [(HOUR, 0), pytest.param((-HOUR, 0), marks=pytest.mark.slow)],
    ids=["forward-back", "back-forward"],
)
def test_wall_clock_jumps_on_a_worker_steal_no_lease_and_fire_cron_once_per_tick(
    app: Offload,
    procs: Procs,
    workdir: Path,
    ledger: Ledger,
    engine: str,
    steps: tuple[int, ...],
) -> None:
    clock = FakeClock(workdir)
    machine_clock = engine == "sqlite"
    if machine_clock:  # the store's clock is the machine's: the test's store calls jump too
        app.store.now = clock.now  # type: ignore[method-assign]
    worker = procs.start(
        offload_argv("worker", TIME_APP, "--url", app.config.url, "--concurrency", "4"),
        "worker",
        env={**clock.env, "OFFLOAD_TEST_CRON": "1"},
    )
    worker.wait_log("took maintenance leadership")
    ledger.enqueue(app, "held", "held")
    ledger.enqueue(app, "held_once", "held-once")
    ledger.enqueue(app, "fails_once", "retry")
    for key in ("held", "held-once", "retry"):
        wait_until(lambda k=key: ledger.pids("start", k), what=f"{key} to start")
    delayed_at = time.monotonic()
    ledger.enqueue(app, "work", "delayed", call_options={"delay": DELAY})

    for n, offset in enumerate(steps):
        clock.set(offset)
        _let_a_lease_pass(f"a lease to pass after the jump to {offset:+d}s")
        probe = f"probe-{n}"
        ledger.enqueue(app, "work", probe)
        wait_until(
            lambda p=probe: ledger.pids("end", p),
            what=f"a job enqueued after the jump to {offset:+d}s to run",
            explain=procs.logs,
        )

    for key in ("held", "held-once"):
        (workdir / f"release-{key}").touch()
    keys = ["held", "held-once", "retry", "delayed", *(f"probe-{n}" for n in range(len(steps)))]
    wait_until(
        lambda: all(ledger.pids("end", k) for k in keys),
        timeout=60,
        what="every job to end",
        explain=lambda: f"{ledger.lines()[-20:]}\n{procs.logs()}",
    )
    kinds = ["held", "held_once", "fails_once", "work"]
    wait_until(
        lambda: not check(ledger, app, kinds=kinds).stuck,
        what="every job's outcome to be stored",
        explain=procs.logs,
    )
    assert _ticks(workdir) >= 1, "cron never fired"
    # Stopped for good: graceful shutdown is the subject of tests/integration/test_shutdown.py.
    worker.signal(signal.SIGKILL)
    worker.wait_exit()

    verdict = check(ledger, app, kinds=kinds)
    verdict.assert_holds(at_most_once=["held-once"])
    for job in all_jobs(app):
        if job.kind in ("held", "held_once"):
            # No lease stolen: not rescued, not run a second time, not abandoned.
            assert (job.state, job.crashes, job.attempt) == ("completed", 0, 1), job
    assert ledger.pids("start", "held") == ledger.pids("start", "held-once") == [worker.pid]

    # Cron: never two jobs for one tick, and no tick's job claimed twice (so none ran twice).
    ticks = all_jobs(app, kind="tick")
    stamps = [j.meta["tick"] for j in ticks]
    assert sorted(stamps) == sorted(set(stamps)), f"a tick fired twice: {sorted(stamps)}"
    assert all(j.attempt <= 1 and j.crashes == 0 for j in ticks), ticks
    done = [j for j in ticks if j.state == "completed"]
    assert len(done) <= _ticks(workdir) <= len(ticks)

    retry = ledger.times("start", "retry")
    delayed = ledger.times("start", "delayed")
    assert len(retry) == 2 and len(delayed) == 1
    early_retry = retry[1] - retry[0] < RETRY_BACKOFF
    early_delayed = delayed[0] - delayed_at < DELAY
    if not machine_clock:
        # The database's clock decides when a job is due, not the worker's.
        assert not early_retry, f"retried {retry[1] - retry[0]:.2f}s after the failure"
        assert not early_delayed, f"a delayed job started after {delayed[0] - delayed_at:.2f}s"
    record_figures(
        f"D1 clock jumps {'/'.join(f'{s:+d}s' for s in steps)}",
        engine,
        verdict,
        cron_ticks=len(done),
        early_retry=int(early_retry),
        early_delayed=int(early_delayed),
    )


# --- D2: cron through daylight-saving changes and a leap day, two schedulers at once ------
WINDOWS = {
    # 21:00 UTC the day before to 09:00 UTC: the US change (2026-03-08 07:00 UTC), the EU
    # change (2026-10-25 01:00 UTC) and the leap day 2028-02-29.
    "us-dst": datetime(2026, 3, 7, 21, 0, tzinfo=UTC),
    "eu-dst": datetime(2026, 10, 24, 21, 0, tzinfo=UTC),
    "leap-day": datetime(2028, 2, 28, 21, 0, tzinfo=UTC),
}
WINDOW = timedelta(hours=12)
STEP = 840.0  # seconds between two runs of the schedulers: shorter than the shortest period
SCHEDULES = {
    "quarter": ("*/15 * * * *", lambda t: t.minute % 15 == 0),
    "hourly": ("0 * * * *", lambda t: t.minute == 0),
    "daily": ("30 2 * * *", lambda t: (t.hour, t.minute) == (2, 30)),
    "leap": ("0 0 29 2 *", lambda t: (t.month, t.day, t.hour, t.minute) == (2, 29, 0, 0)),
}


def _scheduler_app(url: str, window: str, now: list[float]) -> Offload:
    """An app with the window's schedules whose store clock reads `now[0]`."""
    app = make_app(url)
    for name, (cron, _) in SCHEDULES.items():
        app.schedule(f"{window}-{name}", cron, "tick")
    app.store.now = lambda: now[0]  # type: ignore[method-assign]
    return app


def test_cron_fires_each_tick_once_through_dst_changes_and_a_leap_day(
    store_url: str, engine: str
) -> None:
    """Two schedulers race at every step of a fake clock through each window. Schedules are
    in UTC, which has no daylight-saving time: the local clock changes leave them alone, and
    every tick fires exactly once, none skipped, none doubled."""
    fired: Counter[str] = Counter()
    expected: set[str] = set()
    for window, start in WINDOWS.items():
        now = [start.timestamp()]
        apps = [_scheduler_app(store_url, window, now) for _ in range(2)]
        schedulers = [Scheduler(every=STEP) for _ in apps]
        barrier = threading.Barrier(len(apps))
        errors: list[BaseException] = []
        last = now[0]

        def run(scheduler: Scheduler, app: Offload) -> None:
            try:
                barrier.wait()
                scheduler.run(app)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        try:
            while now[0] <= (start + WINDOW).timestamp():
                threads = [
                    threading.Thread(target=run, args=pair) for pair in zip(schedulers, apps)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                assert errors == [], errors
                last = now[0]
                now[0] += STEP
            for job in all_jobs(apps[0], kind="tick"):
                if job.meta["cron"].startswith(f"{window}-"):
                    fired[f"{job.meta['cron']}@{job.meta['tick']:.0f}"] += 1
        finally:
            for app in apps:
                app.close()
        minute = start
        while minute.timestamp() <= last:
            for name, (_, matches) in SCHEDULES.items():
                if matches(minute):
                    expected.add(f"{window}-{name}@{minute.timestamp():.0f}")
            minute += timedelta(minutes=1)

    verdict = Verdict(expected, expected, fired, fired, {}, expected)
    assert set(fired) == expected, (
        f"skipped: {sorted(expected - set(fired))[:5]}, extra: {sorted(set(fired) - expected)[:5]}"
    )
    verdict.assert_holds()
    assert sum(1 for k in fired if "-leap@" in k) == 1  # 2028-02-29 00:00 only
    record_figures("D2 cron through DST and a leap day", engine, verdict)
