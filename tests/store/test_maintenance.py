"""The leader's duties and their bookkeeping: promote, prune, leadership, workers, cron,
counters."""

from __future__ import annotations

from offload.store._contract import CronTick, JobFilter, Store, WorkerInfo

from ._helpers import (
    claim,
    claim_one,
    complete,
    fail,
    get,
    insert,
    insert_one,
    new_job,
    wait_for_clock,
)


# --- promote ------------------------------------------------------------------------------
def test_promote_makes_due_retryable_jobs_available(store: Store) -> None:
    due, later = insert(store, new_job(), new_job())
    first, second = claim(store, limit=2)
    fail(store, first, retry_in=0)
    fail(store, second, retry_in=3600)

    assert store.job_promote_due() == 1

    assert (get(store, due).state, get(store, later).state) == ("available", "retryable")
    assert claim_one(store).id == due
    assert store.job_promote_due() == 0


def test_promote_makes_due_scheduled_jobs_available(store: Store) -> None:
    # A scheduled job becomes due only by the store's clock passing its time, so it is
    # scheduled a moment ahead and the test spins on store.now() until then. Nothing depends
    # on how long that takes: a slow machine merely promotes it on the first call.
    at = store.now() + 0.2
    job_id, far = insert(store, new_job(scheduled_at=at), new_job(scheduled_at=at + 3600))
    early = store.job_promote_due()

    wait_for_clock(store, at)
    assert early + store.job_promote_due() == 1

    assert (get(store, job_id).state, get(store, far).state) == ("available", "scheduled")
    assert store.job_promote_due() == 0
    assert claim_one(store).id == job_id


def test_promote_with_nothing_due(store: Store) -> None:
    insert_one(store)
    insert_one(store, scheduled_at=store.now() + 3600)
    assert store.job_promote_due() == 0


def test_promote_many_at_once(store: Store) -> None:
    insert(store, *[new_job() for _ in range(50)])
    for job in claim(store, limit=50):
        fail(store, job, retry_in=-1)
    assert store.job_promote_due() == 50
    assert len(claim(store, limit=100)) == 50


# --- prune --------------------------------------------------------------------------------
def test_prune_deletes_completed_jobs_past_their_result_ttl(store: Store) -> None:
    expired, kept = insert(store, new_job(result_ttl=-1), new_job(result_ttl=3600))
    for job in claim(store, limit=2):
        complete(store, job)

    assert store.job_prune(dead_older_than=3600) == 1

    assert store.job_get(expired) is None
    assert get(store, kept).state == "completed"


def test_prune_deletes_final_failures_older_than_the_cutoff(store: Store) -> None:
    dead, cancelled = insert(store, new_job(queue="d"), new_job())
    fail(store, claim_one(store, "d"), retry_in=None)
    store.job_cancel(cancelled)

    assert store.job_prune(dead_older_than=3600) == 0
    assert {get(store, dead).state, get(store, cancelled).state} == {"dead", "cancelled"}

    assert store.job_prune(dead_older_than=-1) == 2
    assert (store.job_get(dead), store.job_get(cancelled)) == (None, None)


def test_prune_never_touches_unfinished_jobs(store: Store) -> None:
    now = store.now()
    ids = insert(
        store,
        new_job(result_ttl=-1),
        new_job(result_ttl=-1, scheduled_at=now + 3600),
        new_job(result_ttl=-1, queue="r"),
        new_job(result_ttl=-1, queue="f"),
    )
    claim_one(store, "r")
    fail(store, claim_one(store, "f"), retry_in=3600)

    assert store.job_prune(dead_older_than=-1) == 0
    states = [get(store, i).state for i in ids]
    assert states == ["available", "scheduled", "running", "retryable"]


# --- leadership ---------------------------------------------------------------------------
def test_only_one_leader_while_its_lease_lives(store: Store) -> None:
    assert store.leader_acquire("maintenance", "a", ttl=60) is True
    assert store.leader_acquire("maintenance", "b", ttl=60) is False
    assert store.leader_acquire("maintenance", "a", ttl=60) is True  # renewal
    assert store.leader_acquire("maintenance", "b", ttl=60) is False


def test_release_lets_another_owner_lead(store: Store) -> None:
    store.leader_acquire("maintenance", "a", ttl=60)
    store.leader_release("maintenance", "b")  # not b's to release
    assert store.leader_acquire("maintenance", "b", ttl=60) is False

    store.leader_release("maintenance", "a")
    assert store.leader_acquire("maintenance", "b", ttl=60) is True
    assert store.leader_acquire("maintenance", "a", ttl=60) is False


def test_an_expired_leadership_is_taken_over(store: Store) -> None:
    assert store.leader_acquire("maintenance", "a", ttl=-1) is True
    assert store.leader_acquire("maintenance", "b", ttl=60) is True
    assert store.leader_acquire("maintenance", "a", ttl=60) is False


def test_leaderships_are_independent_by_name(store: Store) -> None:
    assert store.leader_acquire("one", "a", ttl=60) is True
    assert store.leader_acquire("two", "b", ttl=60) is True
    assert store.leader_acquire("one", "b", ttl=60) is False


def test_releasing_an_unknown_leadership_is_harmless(store: Store) -> None:
    store.leader_release("nobody", "a")
    assert store.leader_acquire("nobody", "a", ttl=60) is True


# --- workers ------------------------------------------------------------------------------
def _worker(worker_id: str, running: int = 0, started_at: float = 1000.0) -> WorkerInfo:
    return WorkerInfo(worker_id, "host-1", 4242, ["default", "mail"], started_at, 0.0, running)


def test_worker_beat_registers_and_refreshes(store: Store) -> None:
    before = store.now()
    store.worker_beat(_worker("w1", running=0, started_at=1000.0))
    store.worker_beat(_worker("w2", running=1, started_at=2000.0))
    store.worker_beat(_worker("w1", running=3, started_at=1000.0))
    after = store.now()

    workers = sorted(store.worker_list(seen_within=60), key=lambda w: w.id)
    assert [(w.id, w.host, w.pid, w.queues, w.started_at, w.running) for w in workers] == [
        ("w1", "host-1", 4242, ["default", "mail"], 1000.0, 3),
        ("w2", "host-1", 4242, ["default", "mail"], 2000.0, 1),
    ]
    for w in workers:
        assert before - 1e-3 <= w.seen_at <= after + 1e-3


def test_a_worker_record_keeps_its_first_owner(store: Store) -> None:
    from dataclasses import replace

    assert store.worker_owner("w1") is None  # no record
    store.worker_beat(_worker("w2"))  # a Python worker's: nobody's
    assert store.worker_owner("w2") is None
    store.worker_beat(replace(_worker("w1"), owner="token-a"))
    store.worker_beat(replace(_worker("w1", running=2), owner="token-b"))
    store.worker_beat(_worker("w1", running=1))
    assert store.worker_owner("w1") == "token-a"
    assert [w.running for w in store.worker_list(seen_within=60) if w.id == "w1"] == [1]
    store.worker_remove("w1")
    assert store.worker_owner("w1") is None


def test_worker_remove_forgets_it(store: Store) -> None:
    store.worker_beat(_worker("w1"))
    store.worker_beat(_worker("w2"))
    store.worker_remove("w1")
    store.worker_remove("unknown")
    assert [w.id for w in store.worker_list(seen_within=60)] == ["w2"]


def test_worker_list_leaves_out_workers_not_seen_within_the_window(store: Store) -> None:
    store.worker_beat(_worker("w1"))
    assert store.worker_list(seen_within=-1) == []
    assert [w.id for w in store.worker_list(seen_within=60)] == ["w1"]


# --- cron ---------------------------------------------------------------------------------
def _tick(tick: float, name: str = "nightly") -> CronTick:
    return CronTick(name, tick, new_job(kind=f"cron.{name}", args={"tick": tick}))


def _cron_jobs(store: Store, name: str = "nightly") -> list[dict[str, float]]:
    return [j.args for j in store.job_list(JobFilter(kind=f"cron.{name}"))]


def test_cron_has_no_tick_before_it_fires(store: Store) -> None:
    assert store.cron_last_tick("nightly") is None


def test_cron_fires_each_tick_once(store: Store) -> None:
    assert store.cron_fire(_tick(1000.0)) is True
    assert store.cron_last_tick("nightly") == 1000.0
    assert _cron_jobs(store) == [{"tick": 1000.0}]

    assert store.cron_fire(_tick(1000.0)) is False
    assert _cron_jobs(store) == [{"tick": 1000.0}]

    assert store.cron_fire(_tick(1060.0)) is True
    assert store.cron_last_tick("nightly") == 1060.0
    assert _cron_jobs(store) == [{"tick": 1060.0}, {"tick": 1000.0}]


def test_cron_does_not_fire_an_older_tick(store: Store) -> None:
    store.cron_fire(_tick(1060.0))
    assert store.cron_fire(_tick(1000.0)) is False
    assert store.cron_last_tick("nightly") == 1060.0
    assert _cron_jobs(store) == [{"tick": 1060.0}]


def test_cron_schedules_are_independent(store: Store) -> None:
    assert store.cron_fire(_tick(1000.0, "a")) is True
    assert store.cron_fire(_tick(1000.0, "b")) is True
    assert (store.cron_last_tick("a"), store.cron_last_tick("b")) == (1000.0, 1000.0)
    assert len(_cron_jobs(store, "a")) == len(_cron_jobs(store, "b")) == 1


def test_a_cron_job_is_an_ordinary_claimable_job(store: Store) -> None:
    store.cron_fire(_tick(1000.0))
    job = claim_one(store)
    assert (job.kind, job.args) == ("cron.nightly", {"tick": 1000.0})


# --- counters -----------------------------------------------------------------------------
def test_counters_start_empty_and_add_up(store: Store) -> None:
    assert store.counters() == {}
    store.counter_add("x", 2)
    store.counter_add("x", 3)
    store.counter_add("y", 1)
    store.counter_add("x", -1)
    assert store.counters() == {"x": 4, "y": 1}
