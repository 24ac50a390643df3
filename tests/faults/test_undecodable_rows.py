"""One stored row that cannot be decoded stalls nothing, loses nothing, runs nothing twice.

A job's row is damaged behind the store's back after it was enqueued (a broken JSON text, a
flipped byte, a document of the wrong shape); real worker processes then run the backlog. Every
good job must complete exactly once, and the bad row must end dead on its first claim with an
error that names what could not be decoded, its stored text kept as it was. The catalogue's F1
is the same fault with each kind of damage.
"""

from __future__ import annotations

import pytest

from offload import Offload
from tests.integration._harness import Procs
from tests.store._raw import flip_byte, overwrite, stored

from ._backlog import BAD, Damage, assert_buried, run_backlog
from ._ledger import Ledger, check, record_figures


def _damage(engine: str) -> Damage:
    """Broken JSON where the engine can hold it (SQLite's TEXT); PostgreSQL's jsonb only holds
    valid JSON, so there the damage is a document of the wrong shape."""
    value = '{"broken' if engine == "sqlite" else "[1, 2, 3]"
    return lambda store, job_id, conn: overwrite(store, job_id, "args", value, conn)


def test_one_undecodable_row_stalls_no_worker(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    bad, keys = run_backlog(app, procs, ledger, 200, _damage(engine), workers=2)
    verdict = check(ledger, app, succeeds=lambda key: key != BAD)
    verdict.assert_holds()
    assert set(verdict.ended) == set(keys), "a good job never ran, or the bad one did"
    words = ("arguments", "not valid JSON") if engine == "sqlite" else ("arguments", "array")
    assert_buried(app, bad, *words)
    assert app.store.counters().get("undecodable") == 1
    record_figures("undecodable row among 200 jobs, 2 workers", engine, verdict)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_flipped_byte_in_a_row_stalls_no_worker(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    # `{"key":"bad"}` with its 9th byte (the `b`) made 0xFF: not UTF-8 any more, and sqlite3
    # refuses to fetch the TEXT column at all.
    def flip(store: object, job_id: int, conn: object) -> None:
        flip_byte(app.store, job_id, "args", 8, conn)

    bad, keys = run_backlog(app, procs, ledger, 200, flip, workers=2)
    verdict = check(ledger, app, succeeds=lambda key: key != BAD)
    verdict.assert_holds()
    assert set(verdict.ended) == set(keys)
    assert_buried(app, bad, "arguments", "not valid UTF-8")
    assert stored(app.store, bad, "args") == b'{"key":"\xffad"}', "the raw payload was not kept"
    record_figures("flipped byte in a row among 200 jobs, 2 workers", engine, verdict)


# F1: each kind of malformed payload, where its engine can hold it.
F1 = [
    pytest.param("sqlite", "args", '{"broken', "not valid JSON", id="sqlite-broken-json"),
    pytest.param("sqlite", "args", "[1, 2, 3]", "a JSON array, not", id="sqlite-array-args"),
    pytest.param(
        "sqlite", "args", b'{"key":"\xc3\x28"}', "not valid UTF-8", id="sqlite-invalid-utf8"
    ),
    pytest.param("postgres", "args", "[1, 2, 3]", "a JSON array, not", id="postgres-array-args"),
    pytest.param("postgres", "args", '"key=bad"', "a JSON string, not", id="postgres-string-args"),
    pytest.param("postgres", "meta", "[]", "meta is a JSON array", id="postgres-array-meta"),
]


@pytest.mark.parametrize(("store_url", "column", "value", "words"), F1, indirect=["store_url"])
def test_f1_a_malformed_stored_payload_is_dead_at_its_first_claim(
    app: Offload,
    procs: Procs,
    ledger: Ledger,
    engine: str,
    column: str,
    value: str | bytes,
    words: str,
    request: pytest.FixtureRequest,
) -> None:
    def damage(store: object, job_id: int, conn: object) -> None:
        overwrite(app.store, job_id, column, value, conn)

    bad, keys = run_backlog(app, procs, ledger, 99, damage)
    verdict = check(ledger, app, succeeds=lambda key: key != BAD)
    verdict.assert_holds()
    assert set(verdict.ended) == set(keys), "the other 99 jobs must complete"
    assert_buried(app, bad, words)
    kept = stored(app.store, bad, column)  # bytes on SQLite; jsonb's text on PostgreSQL
    if isinstance(value, str):  # and jsonb spaces its text its own way
        text = kept.decode() if isinstance(kept, bytes) else kept
        assert text.replace(" ", "") == value.replace(" ", ""), "the raw payload was not kept"
    else:
        assert kept == value, "the raw payload was not kept"
    label = request.node.callspec.id.split("-", 1)[1]
    record_figures(f"F1 malformed stored payload ({label})", engine, verdict)
