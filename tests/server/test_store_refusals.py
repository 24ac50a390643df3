"""A store that refuses writes or is damaged, as HTTP sees it: 503 problems, never a 500.

The store is a SQLite file on a tmpfs of 4 MB that the test fills (root only, as in CI; the
tests skip elsewhere). A refused enqueue is `503 store-full` with `Retry-After`; /healthz says
the store is unwritable, learned from its own write probe or from refused requests, and says
ok again once space is back. A damaged file is `503 store-damaged`, without Retry-After.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx2
from starlette.testclient import TestClient

from offload import Offload
from tests.faults._disk import fill, free, small_disk
from tests.integration._harness import wait_until

from ._helpers import MakeClient, declare


def post_until_refused(client: TestClient, attempts: int = 2000) -> httpx2.Response:
    """POST jobs until one is not accepted (a write-ahead log may hold a few more)."""
    for i in range(attempts):
        r = client.post("/jobs", json={"kind": "add", "args": {"a": i, "b": 1}})
        if r.status_code != 202:
            return r
    raise AssertionError(f"{attempts} jobs accepted on a full disk")


def test_a_refused_enqueue_is_503_store_full_with_retry_after(
    tmp_path: Path, make_client: MakeClient
) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        app = declare(Offload(f"sqlite:///{disk}/jobs.db"))
        try:
            client = make_client(app)
            assert client.get("/healthz").status_code == 200
            fill(disk)

            r = post_until_refused(client)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["type"] == "/problems/store-full"
            assert "nothing was stored" in body["detail"]
            assert str(disk) not in r.text, "the problem names a server path"
            assert int(r.headers["Retry-After"]) >= 1
            health = client.get("/healthz")  # within the probe's interval: from the refusal
            assert health.status_code == 503 and health.json()["type"] == "/problems/store-full"

            free(disk)
            assert client.post("/jobs", json={"kind": "add", "args": {"a": 1, "b": 2}}).is_success
            wait_until(
                lambda: client.get("/healthz").status_code == 200,
                timeout=15,
                what="/healthz to say ok once space is back",
            )
        finally:
            app.close()


def test_healthz_finds_a_full_disk_by_itself(tmp_path: Path, make_client: MakeClient) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        app = declare(Offload(f"sqlite:///{disk}/jobs.db"))
        try:
            app.store.migrate()
            fill(disk)
            client = make_client(app)  # nothing was refused yet: only the probe can tell
            r = client.get("/healthz")
            assert r.status_code == 503, r.text
            assert r.json()["type"] == "/problems/store-full"
            assert "disk is full" in r.json()["detail"]
            assert int(r.headers["Retry-After"]) >= 1
        finally:
            app.close()


def test_a_damaged_store_is_503_store_damaged(tmp_path: Path, make_client: MakeClient) -> None:
    good = tmp_path / "good.db"
    app = declare(Offload(f"sqlite:///{good}"))
    app.enqueue("add", a=1, b=2)
    app.close()
    damaged = tmp_path / "damaged.db"
    shutil.copy(good, damaged)
    with open(damaged, "r+b") as f:
        f.seek(0)
        f.write(b"not a database!!")  # the header
    app = declare(Offload(f"sqlite:///{damaged}", auto_migrate=False))
    try:
        client = make_client(app)
        r = client.post("/jobs", json={"kind": "add", "args": {"a": 1, "b": 2}})
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "/problems/store-damaged"
        assert "Retry-After" not in r.headers
        assert str(damaged) not in r.text
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["type"] == "/problems/store-damaged"
    finally:
        app.close()
