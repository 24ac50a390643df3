"""Re-encrypting stored jobs (store/_sealed.py): encrypted jobs read page by page, and written
back only where a job still holds what was read, so that a result stored meanwhile is kept."""

from __future__ import annotations

from offload.store._contract import Store
from offload.store._sealed import SEALED_META, Reseal

from ._helpers import claim_one, complete, get, insert, new_job

MARK = {SEALED_META: ["a"]}


def test_encrypted_jobs_come_by_id_in_pages(store: Store) -> None:
    ids = insert(
        store,
        new_job(args={"a": "enc:v1:k1:AAAA", "b": 1}, meta=MARK),
        new_job(args={"a": "plain"}),  # not encrypted: never read
        new_job(args={"a": "enc:v1:k1:BBBB"}, meta=MARK),
        new_job(args={"a": "enc:v1:k1:CCCC"}, meta=MARK),
    )
    first = store.job_sealed_page(0, 2)
    assert [r.id for r in first] == [ids[0], ids[2]]
    assert first[0].args == {"a": "enc:v1:k1:AAAA", "b": 1} and first[0].meta == MARK
    assert first[0].kind == "k" and first[0].result is None
    assert [r.id for r in store.job_sealed_page(first[-1].id, 2)] == [ids[3]]
    assert store.job_sealed_page(ids[3], 2) == []


def test_a_reseal_writes_only_what_was_read(store: Store) -> None:
    ids = insert(
        store,
        new_job(args={"a": "enc:v1:k1:AAAA"}, meta=MARK),
        new_job(args={"a": "enc:v1:k1:BBBB"}, meta=MARK, queue="q2"),
    )
    rows = {r.id: r for r in store.job_sealed_page(0, 10)}
    # The second job runs and stores its result after it was read.
    complete(store, claim_one(store, "q2"), "enc:v1:k2:RESULT")

    written = store.job_reseal_many(
        [
            Reseal(rows[ids[0]], {"a": "enc:v1:k2:AAAA"}, None),
            Reseal(rows[ids[1]], {"a": "enc:v1:k2:BBBB"}, None),
        ]
    )
    assert written == 1
    assert get(store, ids[0]).args == {"a": "enc:v1:k2:AAAA"}
    kept = get(store, ids[1])  # changed meanwhile: left as the worker wrote it
    assert kept.args == {"a": "enc:v1:k1:BBBB"} and kept.result == "enc:v1:k2:RESULT"

    again = {r.id: r for r in store.job_sealed_page(0, 10)}[ids[1]]
    assert again.result == "enc:v1:k2:RESULT"
    assert store.job_reseal_many([Reseal(again, {"a": "enc:v1:k2:BBBB"}, again.result)]) == 1
    assert get(store, ids[1]).args == {"a": "enc:v1:k2:BBBB"}
    assert store.job_reseal_many([]) == 0


def test_a_damaged_row_is_passed_over(store: Store) -> None:
    from ._raw import overwrite

    ids = insert(
        store,
        new_job(args={"a": "enc:v1:k1:AAAA"}, meta=MARK),
        new_job(args={"a": "enc:v1:k1:BBBB"}, meta=MARK),
    )
    if store.engine == "sqlite":
        overwrite(store, ids[0], "meta", "{not json")
    else:
        overwrite(store, ids[0], "args", '["not an object"]')
    assert [r.id for r in store.job_sealed_page(0, 10)] == [ids[1]]
