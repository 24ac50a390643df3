"""job_insert_many: ids, initial state, unique keys, bulk size and the JSON round trip."""

from __future__ import annotations

from offload.store._contract import Inserted, JobFilter, NewJob, Store

from ._helpers import between, get, insert, insert_one, new_job


def test_insert_returns_distinct_ascending_ids_in_input_order(store: Store) -> None:
    inserted = store.job_insert_many([new_job(kind=f"k{i}") for i in range(3)])

    ids = [i.id for i in inserted]
    assert [i.duplicate for i in inserted] == [False, False, False]
    assert ids == sorted(set(ids))
    assert [get(store, i).kind for i in ids] == ["k0", "k1", "k2"]


def test_insert_nothing_returns_nothing(store: Store) -> None:
    assert store.job_insert_many([]) == []
    assert store.job_counts() == []


def test_ids_keep_growing_across_calls(store: Store) -> None:
    first = insert_one(store)
    second = insert_one(store)
    assert second > first


def test_new_job_is_recorded_with_every_field(store: Store) -> None:
    job = NewJob(
        kind="email.send",
        queue="mail",
        args={"to": "a@example.com"},
        priority=7,
        max_attempts=3,
        delivery="at_most_once",
        timeout=2.5,
        unique_key="welcome:1",
        result_ttl=60.0,
        meta={"correlation_id": "c-1"},
        tenant="acme",
    )
    before = store.now()
    [job_id] = insert(store, job)
    after = store.now()

    r = get(store, job_id)
    assert (r.id, r.kind, r.queue, r.tenant) == (job_id, "email.send", "mail", "acme")
    assert (r.args, r.meta) == ({"to": "a@example.com"}, {"correlation_id": "c-1"})
    assert (r.priority, r.max_attempts, r.delivery) == (7, 3, "at_most_once")
    assert r.timeout == 2.5
    assert r.unique_key == "welcome:1"
    assert r.result_ttl == 60.0
    assert r.state == "available"
    assert (r.attempt, r.crashes, r.errors, r.result) == (0, 0, [], None)
    assert (r.lease_owner, r.lease_token, r.lease_expires_at) == (None, None, None)
    assert (r.attempted_at, r.finished_at) == (None, None)
    assert between(before, r.inserted_at, after)


def test_defaults_of_a_new_job(store: Store) -> None:
    r = get(store, insert_one(store))
    assert (r.priority, r.max_attempts, r.delivery) == (0, 20, "at_least_once")
    assert (r.timeout, r.unique_key, r.tenant, r.meta) == (None, None, None, {})
    assert r.result_ttl == 86400.0


def test_job_without_scheduled_at_is_available_now(store: Store) -> None:
    before = store.now()
    r = get(store, insert_one(store))
    after = store.now()
    assert r.state == "available"
    assert between(before, r.scheduled_at, after)


def test_job_scheduled_in_the_future_is_scheduled(store: Store) -> None:
    at = store.now() + 3600
    r = get(store, insert_one(store, scheduled_at=at))
    assert r.state == "scheduled"
    assert abs(r.scheduled_at - at) < 1e-3


def test_job_scheduled_in_the_past_is_available_and_keeps_its_time(store: Store) -> None:
    at = store.now() - 3600
    r = get(store, insert_one(store, scheduled_at=at))
    assert r.state == "available"
    assert abs(r.scheduled_at - at) < 1e-3


def test_job_with_a_delay_is_scheduled_that_long_after_now(store: Store) -> None:
    before = store.now()
    r = get(store, insert_one(store, delay=3600))
    after = store.now()
    assert r.state == "scheduled"
    assert between(before + 3600, r.scheduled_at, after + 3600)


def test_job_with_a_negative_delay_is_available_and_dated_back(store: Store) -> None:
    before = store.now()
    r = get(store, insert_one(store, delay=-60))
    after = store.now()
    assert r.state == "available"
    assert between(before - 60, r.scheduled_at, after - 60)


def test_scheduled_at_wins_over_delay(store: Store) -> None:
    at = store.now() - 10
    r = get(store, insert_one(store, scheduled_at=at, delay=3600))
    assert r.state == "available"
    assert abs(r.scheduled_at - at) < 1e-3


def test_mixed_batch_gets_a_state_per_job(store: Store) -> None:
    now = store.now()
    ids = insert(
        store,
        new_job(),
        new_job(scheduled_at=now + 3600),
        new_job(scheduled_at=now - 1),
        new_job(delay=3600),
    )
    states = [get(store, i).state for i in ids]
    assert states == ["available", "scheduled", "available", "scheduled"]


def test_duplicate_unique_key_returns_the_existing_job(store: Store) -> None:
    [first] = store.job_insert_many([new_job(unique_key="u1", args={"n": 1})])
    again = store.job_insert_many([new_job(unique_key="u1", args={"n": 2})])

    assert first == Inserted(first.id, duplicate=False)
    assert again == [Inserted(first.id, duplicate=True)]
    jobs = store.job_list(JobFilter())
    assert [(j.id, j.args) for j in jobs] == [(first.id, {"n": 1})]


def test_duplicate_unique_key_within_one_call(store: Store) -> None:
    got = store.job_insert_many(
        [new_job(unique_key="u1"), new_job(unique_key="u2"), new_job(unique_key="u1")]
    )
    assert [g.duplicate for g in got] == [False, False, True]
    assert got[2].id == got[0].id
    assert got[1].id != got[0].id
    assert len(store.job_list(JobFilter())) == 2


def test_duplicate_in_a_batch_does_not_stop_the_others(store: Store) -> None:
    [existing] = insert(store, new_job(unique_key="u1"))
    got = store.job_insert_many([new_job(), new_job(unique_key="u1"), new_job()])
    assert [g.duplicate for g in got] == [False, True, False]
    assert got[1].id == existing
    assert len(store.job_list(JobFilter())) == 3


def test_jobs_without_unique_key_never_collide(store: Store) -> None:
    ids = insert(store, new_job(), new_job(), new_job())
    assert len(set(ids)) == 3


def test_bulk_insert_of_5000_in_one_call(store: Store) -> None:
    jobs = [new_job(args={"i": i}) for i in range(5000)]
    inserted = store.job_insert_many(jobs)

    ids = [i.id for i in inserted]
    assert len(ids) == 5000
    assert ids == sorted(set(ids))
    assert not any(i.duplicate for i in inserted)
    [count] = store.job_counts()
    assert (count.queue, count.state, count.count) == ("default", "available", 5000)
    assert get(store, ids[0]).args == {"i": 0}
    assert get(store, ids[-1]).args == {"i": 4999}


PAYLOAD = {
    "text": 'naïve café — 日本語 🎉 \t\n"quoted" \\back\\slash',
    "nested": {"list": [1, 2.5, -3, True, False, None, "x"], "deep": {"a": {"b": {"c": []}}}},
    "empty": {"s": "", "l": [], "d": {}},
    "big": 2**53,
    "negative_float": -1.25e-7,
    "ключ": "значение",
}


def test_args_and_meta_round_trip_as_json(store: Store) -> None:
    meta = {"trace": {"id": "t-1", "tags": ["ä", "ß"]}, "emoji": "🚀"}
    r = get(store, insert_one(store, args=PAYLOAD, meta=meta))
    assert r.args == PAYLOAD
    assert r.meta == meta
