"""Encryption at rest: an encrypted job type's arguments and result are ciphertext in the store
(read raw with SQL), on both engines, through real worker processes; `offload keys rotate`
moves them to a new key, after which the old one can go; a worker without the key puts the job
back unrun; the API, the dashboard and `offload jobs` show `<encrypted>`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import EncryptionKeyError, Offload
from offload.jobs._keys import new_key_entry
from offload.server import create_app
from offload.server._config import Token
from tests.store._raw import transaction

from ._helpers import CLI, job, opened, wait_state, wait_until
from .encryptapp import make

CARD = "4111111111111111"
NOTE = "meet me at the old mill"
K1 = new_key_entry("k1")
K2 = new_key_entry("k2")


def raw_rows(url: str) -> list[tuple[int, str, str | None]]:
    """Every job's arguments and result as the database holds them, read with plain SQL."""
    with opened(url) as store:
        if store.engine == "sqlite":
            conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
            try:
                return list(conn.execute("SELECT id, args, result FROM offload_jobs ORDER BY id"))
            finally:
                conn.close()
        import psycopg

        sql = f'SELECT id, args::text, result::text FROM "{store.schema}".offload_jobs ORDER BY id'  # type: ignore[attr-defined]
        with psycopg.connect(store.conninfo) as pg:  # type: ignore[attr-defined]
            return list(pg.execute(sql).fetchall())


def no_plaintext(url: str) -> str:
    text = json.dumps(raw_rows(url))
    assert CARD not in text and NOTE not in text and NOTE.upper() not in text, text
    return text


def run_worker(cli: CLI, url: str, log: Path) -> Any:
    return cli.popen("worker", "encryptapp:app", "--url", url, "--poll-interval", "0.2", log=log)


def stop(proc: Any) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def test_round_trip_rotation_and_key_removal(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = store_url
    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    app = make(url)
    app.store.migrate()
    try:
        one = app.jobs["charge"].enqueue(CARD, 5)
        many = app.enqueue_many(
            [app.jobs["charge"].prepare(CARD, 6), app.jobs["shout"].prepare(NOTE)]
        )
        with transaction(app.store) as conn:  # in the caller's own transaction
            own = app.jobs["charge"].options(connection=conn).enqueue(CARD, 7)
        jobs = [one, *many, own]
        text = no_plaintext(url)  # encrypted by the producer, before the rows were written
        assert text.count("enc:v1:k1:") == 4  # three cards and the note

        cli = CLI(tmp_path, {"OFFLOAD_KEYS": K1})
        worker = run_worker(cli, url, tmp_path / "w1.log")
        try:
            for j in jobs:
                wait_state(url, j.id, "completed")
        finally:
            stop(worker)
        text = no_plaintext(url)  # the results too
        assert text.count("enc:v1:k1:") == 4 + 4
        assert one.result() == {"charged": CARD, "amount": 5}  # opened here, with the key
        assert many[1].result() == NOTE.upper()
        assert own.args == {"card": CARD, "amount": 7}

        # A new key first, the old one after it: `offload keys rotate` re-encrypts.
        both = CLI(tmp_path, {"OFFLOAD_KEYS": f"{K2}\n{K1}"})
        out = both("keys", "rotate", "--url", url, "--batch", "2", "--json").json()
        assert out["reencrypted"] == 4 and out["unreadable"] == [] and out["key"] == "k2"
        text = no_plaintext(url)
        assert "enc:v1:k1:" not in text and text.count("enc:v1:k2:") == 8
        again = both("keys", "rotate", "--url", url, "--json").json()
        assert again["reencrypted"] == 0 and again["seen"] == 4

        # The old key removed: everything still opens, here and in a worker's results.
        monkeypatch.setenv("OFFLOAD_KEYS", K2)
        assert one.result() == {"charged": CARD, "amount": 5}
        assert many[1].refresh().args == {"note": NOTE}
        late = app.jobs["charge"].enqueue(CARD, 8)
        new_only = CLI(tmp_path, {"OFFLOAD_KEYS": K2})
        shown = new_only("jobs", "show", str(one.id), "--url", url, "--decrypt", "--json").json()
        assert shown["args"]["card"] == CARD and shown["result"]["charged"] == CARD
        worker = run_worker(new_only, url, tmp_path / "w2.log")
        try:
            wait_state(url, late.id, "completed")
        finally:
            stop(worker)
        assert late.result() == {"charged": CARD, "amount": 8}
        no_plaintext(url)
    finally:
        app.close()


@pytest.mark.engine("sqlite")
def test_a_worker_without_the_key_puts_the_job_back_unrun(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = store_url
    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    app = make(url)
    app.store.migrate()
    try:
        j = app.jobs["charge"].enqueue(CARD, 5)
    finally:
        app.close()
    keyless = CLI(tmp_path, {"OFFLOAD_KEYS": ""})
    log = tmp_path / "worker.log"
    worker = run_worker(keyless, url, log)
    try:
        wait_until(lambda: "put back unrun" in log.read_text(), "the put-back to be logged")
        record = wait_state(url, j.id, "scheduled")
    finally:
        stop(worker)
    assert record.attempt == 0 and record.errors == []  # no attempt used, nothing ran
    assert "OFFLOAD_KEYS" in log.read_text() and CARD not in log.read_text()

    # Another key: the job still does not run, and says which key it wants.
    other = CLI(tmp_path, {"OFFLOAD_KEYS": K2})
    with opened(url) as store:
        store.job_retry(j.id)  # due now
    log2 = tmp_path / "worker2.log"
    worker = run_worker(other, url, log2)
    try:
        wait_until(lambda: "key 'k1'" in log2.read_text(), "the missing key to be named")
    finally:
        stop(worker)
    assert job(url, j.id).attempt == 0


def test_no_key_refuses_at_enqueue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFLOAD_KEYS", raising=False)
    monkeypatch.delenv("OFFLOAD_KEYS_FILE", raising=False)
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    app = make(url)
    app.store.migrate()
    try:
        with pytest.raises(EncryptionKeyError, match=r"\$OFFLOAD_KEYS or \$OFFLOAD_KEYS_FILE"):
            app.jobs["charge"].enqueue(CARD, 5)
        with pytest.raises(EncryptionKeyError, match="'charge' encrypts its arguments"):
            app.enqueue_many([app.jobs["charge"].prepare(CARD, 5)])
        assert raw_rows(url) == []
    finally:
        app.close()
    cli = CLI(tmp_path, {"OFFLOAD_KEYS": ""})
    r = cli(
        "enqueue", "encryptapp:app", "charge", f'card="{CARD}"', "amount=5", "--url", url, code=2
    )
    assert "OFFLOAD_KEYS" in r.err, r


@pytest.mark.engine("sqlite")
def test_encrypted_fields_are_shown_as_such(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = store_url
    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    app = make(url)
    app.store.migrate()
    try:
        j = app.jobs["charge"].enqueue(CARD, 5)
        done = app.jobs["shout"].enqueue(NOTE)
        from offload.testing import drain

        drain(app)
        assert done.result() == NOTE.upper()

        # The CLI, without --decrypt (and without a key at all).
        cli = CLI(tmp_path, {"OFFLOAD_KEYS": ""})
        shown = cli("jobs", "show", str(j.id), "--url", url).out
        assert CARD not in shown and '"card": "<encrypted>"' in shown, shown
        listed = cli("jobs", "list", "--json", "--url", url).json()
        by_id = {r["id"]: r for r in listed}
        assert by_id[j.id]["args"] == {"card": "<encrypted>", "amount": 5}
        assert by_id[done.id]["result"] == "<encrypted>"
        assert NOTE.upper() not in json.dumps(listed)

        # The API: a read token sees <encrypted>; an admin, with the server holding the key,
        # sees the values. A search in the arguments finds nothing by the plaintext.
        tokens = (Token("reader", "read", "r" * 32), Token("boss", "admin", "a" * 32))
        with TestClient(create_app(app, tokens=tokens), base_url="http://127.0.0.1:8750") as c:
            reader = {"Authorization": "Bearer " + "r" * 32}
            admin = {"Authorization": "Bearer " + "a" * 32}
            for path in (
                f"/jobs/{j.id}",
                "/jobs",
                f"/jobs/{done.id}/result",
                "/jobs?args_contain=4111",
            ):
                r = c.get(path, headers=reader)
                assert r.status_code == 200, (path, r.text)
                assert CARD not in r.text and NOTE.upper() not in r.text, (path, r.text)

            def card(headers: dict[str, str]) -> Any:
                jobs = c.get("/jobs", headers=headers).json()["jobs"]
                return next(r for r in jobs if r["id"] == j.id)["args"]["card"]

            assert card(reader) == "<encrypted>"
            assert c.get(f"/jobs/{done.id}/result", headers=reader).json()["result"] == (
                "<encrypted>"
            )
            assert c.get("/jobs?args_contain=4111", headers=admin).json()["jobs"] == []
            assert card(admin) == CARD
            r = c.get(f"/jobs/{done.id}/result", headers=admin)
            assert r.json()["result"] == NOTE.upper()
            monkeypatch.setenv("OFFLOAD_KEYS", K2)  # the server holds another key only
            assert card(admin) == "<encrypted>"
    finally:
        app.close()


def test_the_dashboard_shows_encrypted_fields_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    app = make(f"sqlite:///{tmp_path / 'jobs.db'}")
    app.store.migrate()
    try:
        j = app.jobs["charge"].enqueue(CARD, 5)
        app.schedule("nightly", "0 3 * * *", "charge", CARD, 1)
        monkeypatch.delenv("OFFLOAD_KEYS")  # the server holds no key
        tokens = (Token("reader", "read", "r" * 32),)
        with TestClient(create_app(app, tokens=tokens), base_url="https://127.0.0.1:8750") as c:
            c.headers["Authorization"] = "Bearer " + "r" * 32
            r = c.get("/ui/schedules")
            assert r.status_code == 200 and CARD not in r.text and "encrypted" in r.text, r.text
            for path in (f"/ui/jobs/{j.id}", "/ui/jobs", f"/ui/jobs?args={CARD[:6]}"):
                r = c.get(path)
                assert r.status_code == 200 and CARD not in r.text, (path, r.text)
            assert "&lt;encrypted&gt;" in c.get(f"/ui/jobs/{j.id}").text
    finally:
        app.close()


def test_http_enqueues_are_encrypted_by_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from offload.testing import assert_enqueued

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    app = make(url)
    app.store.migrate()
    try:
        with TestClient(create_app(app), base_url="http://127.0.0.1:8750") as c:
            body = {"kind": "charge", "args": {"card": CARD, "amount": 5}}
            first = c.post("/jobs", json=body, headers={"Idempotency-Key": "order-1"})
            assert first.status_code == 202, first.text
            again = c.post("/jobs", json=body, headers={"Idempotency-Key": "order-1"})
            assert again.headers.get("Idempotent-Replayed") == "true", again.text
            assert again.json()["id"] == first.json()["id"]
            no_plaintext(url)
            assert_enqueued(app, "charge", args={"card": CARD})  # compared opened

            monkeypatch.delenv("OFFLOAD_KEYS")  # a server without the key refuses
            r = c.post("/jobs", json={"kind": "shout", "args": {"note": NOTE}})
            assert r.status_code == 503, r.text
            assert r.json()["type"] == "/problems/encryption-key-missing"
            assert "OFFLOAD_KEYS" in r.json()["detail"]
        assert len(raw_rows(url)) == 1
    finally:
        app.close()


def test_encrypted_arguments_are_opened_before_an_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from offload.testing import drain

    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    old, new = Offload(url), Offload(url)
    try:

        @old.job(name="pay", encrypt=True)
        def pay_v1(card: str) -> str:
            return card

        @new.job(name="pay", encrypt=True, version=2, upgrade={2: lambda a: {"number": a["card"]}})
        def pay_v2(number: str) -> str:
            return number[-4:]

        j = pay_v1.enqueue(CARD)  # version 1, by a producer not yet deployed
        no_plaintext(url)
        drain(new)
        assert new.store.job_get(j.id).state == "completed"
        assert j.result() == CARD[-4:]
        no_plaintext(url)
    finally:
        old.close()
        new.close()


@pytest.mark.engine("sqlite")
def test_a_failed_attempt_keeps_encrypted_values_out_of_its_error_and_log(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = store_url
    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    app = make(url)
    app.store.migrate()
    try:
        j = app.jobs["decline"].enqueue(CARD, "the-shop")
    finally:
        app.close()
    log = tmp_path / "worker.log"
    worker = run_worker(CLI(tmp_path, {"OFFLOAD_KEYS": K1}), url, log)
    try:
        dead = wait_state(url, j.id, "dead")
        wait_until(lambda: "attempt 1 failed" in log.read_text(), "the failure to be logged")
    finally:
        stop(worker)
    assert dead.errors[0]["error"] == "ValueError: card *** declined at the-shop"
    assert CARD not in json.dumps(dead.errors) and CARD not in log.read_text()
    with opened(url) as store:
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        try:
            raw = conn.execute("SELECT errors FROM offload_jobs WHERE id = ?", (j.id,)).fetchone()
        finally:
            conn.close()
    assert CARD not in raw[0]


def test_remote_workers_get_opened_arguments_and_their_results_are_encrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("OFFLOAD_KEYS", K1)
    app = make(url)
    app.store.migrate()
    try:
        j = app.jobs["charge"].enqueue(CARD, 5)
        with TestClient(create_app(app), base_url="http://127.0.0.1:8750") as c:
            r = c.post("/worker/fetch", json={"worker": "node-1", "queues": ["default"]})
            (got,) = r.json()["jobs"]
            assert got["args"] == {"card": CARD, "amount": 5}  # opened by the server
            done = {"id": got["id"], "token": got["token"], "result": {"charged": CARD}}
            assert c.post("/worker/complete", json=done).status_code == 200
        no_plaintext(url)  # the result was encrypted by the server before it was stored
        assert j.result() == {"charged": CARD}
    finally:
        app.close()
