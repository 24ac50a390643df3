"""Events with real worker processes (docs/events.md): many events on 4 partitions with two
subscriptions and two consumer groups; each subscription runs each event once, each group
sees every event once and in offset order per partition, a transactional group's effects
happen exactly once, also when a worker is SIGKILLed in the middle of a batch (whose events,
and only those of batches in flight, are delivered again)."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator

import pytest

from offload import Offload

from ._harness import Ledger, Procs, wait_until
from .eventsapp import create_effects_table, effects, make_app

EVENTS_APP = "tests.integration.eventsapp:app"
QUICK = 2000  # events of the quick run; the slow one publishes 10,000
SUBSCRIPTIONS = ("send-receipt", "index-order")


@pytest.fixture
def events_app(store_url: str) -> Iterator[Offload]:
    application = make_app(store_url)
    application.store.migrate()
    create_effects_table(application)
    yield application
    application.close()


@pytest.fixture
def eprocs(events_app: Offload, workdir) -> Iterator[Procs]:  # type: ignore[no-untyped-def]
    started = Procs(events_app.config.url, workdir)
    yield started
    started.cleanup()


def publish(app: Offload, n: int) -> dict[str, int]:
    """Publish `n` events with keys in batches; every event's "partition:offset"."""
    orders = app.topics["orders"]
    placed: dict[str, int] = {}
    for start in range(0, n, 500):
        count = min(500, n - start)
        keys = [f"customer-{i % 37}" for i in range(start, start + count)]
        for e in orders.publish_many(range(start, start + count), keys=keys):
            placed[f"{e.partition}:{e.offset}"] = e.payload
    return placed


def in_offset_order(ledger: Ledger, event: str) -> dict[int, list[int]]:
    """The offsets each partition's events were noted in, in ledger order."""
    seen: dict[int, list[int]] = {}
    for e, key, _ in ledger.lines():
        if e == event:
            part, offset = key.split(":")
            seen.setdefault(int(part), []).append(int(offset))
    return seen


def wait_all_seen(app: Offload, ledger: Ledger, keys: set[str], timeout: float) -> None:
    def done() -> bool:
        tallies = {name: ledger.tally(name) for name in (*SUBSCRIPTIONS, "analytics")}
        if any(set(t) != keys for t in tallies.values()):
            return False
        return len(set(effects(app))) == len(keys)

    wait_until(
        done,
        timeout,
        "every event to reach both subscriptions and both groups",
        lambda: (
            {name: len(ledger.tally(name)) for name in (*SUBSCRIPTIONS, "analytics")}
            | {"billing": len(effects(app)), "positions": app.store.group_positions("orders")}
        ),
    )


def check_everything_once(app: Offload, ledger: Ledger, keys: set[str]) -> None:
    for name in SUBSCRIPTIONS:
        assert ledger.tally(name) == Counter(dict.fromkeys(keys, 1)), name
    assert ledger.tally("analytics") == Counter(dict.fromkeys(keys, 1))
    for part, offsets in in_offset_order(ledger, "analytics").items():
        assert offsets == sorted(offsets), f"partition {part} read out of order"
    rows = effects(app)
    assert len(rows) == len(keys) and {f"{p}:{o}" for p, o in rows} == keys


def run_many(app: Offload, procs: Procs, ledger: Ledger, n: int, timeout: float) -> None:
    keys = set(publish(app, n))
    assert len(keys) == n
    procs.worker(app=EVENTS_APP, queues="maintenance-only", concurrency=1, name="maintainer")
    for i in range(2):
        procs.worker(app=EVENTS_APP, concurrency=6, maintenance=False, name=f"worker{i}")
    wait_all_seen(app, ledger, keys, timeout)
    check_everything_once(app, ledger, keys)
    heads = app.topics["orders"].heads()
    assert sum(heads.values()) == n
    wait_until(
        lambda: all(p.lag == 0 for p in app.store.group_positions("orders")),
        30,
        "both groups to commit up to every head",
    )


def test_many_events_reach_every_subscription_and_group_once(
    events_app: Offload, eprocs: Procs, ledger: Ledger
) -> None:
    run_many(events_app, eprocs, ledger, QUICK, 60)


@pytest.mark.slow
def test_ten_thousand_events(events_app: Offload, eprocs: Procs, ledger: Ledger) -> None:
    run_many(events_app, eprocs, ledger, 10_000, 300)


def test_a_worker_killed_mid_batch_redelivers_only_the_batches_in_flight(
    events_app: Offload, eprocs: Procs, ledger: Ledger
) -> None:
    keys = set(publish(events_app, 600))
    eprocs.worker(app=EVENTS_APP, queues="maintenance-only", concurrency=1, name="maintainer")
    doomed = eprocs.worker(
        app=EVENTS_APP, concurrency=4, maintenance=False, name="doomed", env={"EVENTS_HOLD": "1"}
    )
    [(_, held, _)] = wait_until(
        lambda: [line for line in ledger.lines() if line[0] == "held"],
        30,
        "a batch of analytics to be held",
    )
    doomed.signal(signal.SIGKILL)
    doomed.wait_exit()
    eprocs.worker(app=EVENTS_APP, concurrency=6, maintenance=False, name="survivor")
    wait_all_seen(events_app, ledger, keys, 60)

    # The subscriptions and the transactional group: exactly once even so.
    rows = effects(events_app)
    assert len(rows) == len(keys) and {f"{p}:{o}" for p, o in rows} == keys
    for name in SUBSCRIPTIONS:
        assert set(ledger.tally(name)) == keys
    # The plain group: every event, in order per partition; again only what was in flight
    # in the killed worker (its batches begun but not committed, the held one among them).
    seen = ledger.tally("analytics")
    assert set(seen) == keys
    again = {k for k, n in seen.items() if n > 1}
    assert max(seen.values()) <= 2
    in_flight: set[str] = set()
    for e, key, pid in ledger.lines():
        if e == "analytics-batch" and pid == doomed.pid:
            part, first, last = (int(x) for x in key.split(":"))
            in_flight |= {f"{part}:{o}" for o in range(first, last + 1)}
    part, first, last = (int(x) for x in held.split(":"))
    held_events = {f"{part}:{o}" for o in range(first, last + 1)}
    assert again <= in_flight
    assert held_events <= set(seen)  # delivered after all, by the survivor
    assert all(
        pid != doomed.pid for e, k, pid in ledger.lines() if e == "analytics" and k in held_events
    )
    for p, offsets in in_offset_order(ledger, "analytics").items():
        firsts = list(dict.fromkeys(offsets))  # first sightings
        assert firsts == sorted(firsts), f"partition {p} read out of order"
