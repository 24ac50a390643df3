"""The Django integration in a tiny project (tests/integrations/djangoproject) whose SQLite
database file is offload's store too: jobs enqueued on Django's connection inside
`transaction.atomic()` commit and roll back with it; `manage.py offload …` runs on the app."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).parent / "djangoproject"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import django
    from django.conf import settings

    if settings.configured:  # pragma: no cover - another module set Django up first
        pytest.fail("Django is already set up in this process: run these tests in their own")
    db = tmp_path_factory.mktemp("django") / "site.db"
    # Set for this module only: subprocesses of later tests (the docs' manage.py) inherit the
    # environment, and must not find this project's settings there.
    patch = pytest.MonkeyPatch()
    patch.setenv("OFFLOAD_DJANGO_DB", str(db))
    patch.setenv("DJANGO_SETTINGS_MODULE", "project_settings")
    patch.syspath_prepend(str(PROJECT))
    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    yield db
    from offload.integrations.django import get_app

    get_app().close()
    connection.close()
    patch.undo()


def _kinds() -> list[tuple[str, dict[str, object]]]:
    from offload.integrations.django import get_app
    from offload.testing import enqueued

    return [(r.kind, r.args) for r in enqueued(get_app())]


def _orders() -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM orders ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def test_job_modules_are_discovered(project: Path) -> None:
    from offload.integrations.django import get_app

    assert "send_receipt" in get_app().jobs


def test_a_rolled_back_atomic_block_leaves_neither_row_nor_job(project: Path) -> None:
    from django.db import connection, transaction
    from shop.jobs import send_receipt

    from offload.integrations.django import connection as offload_connection

    with pytest.raises(RuntimeError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO orders (id) VALUES (1)")
        send_receipt.options(connection=offload_connection()).enqueue(1)
        raise RuntimeError("payment refused")
    assert _orders() == []
    assert _kinds() == []

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO orders (id) VALUES (2)")
        send_receipt.options(connection=offload_connection()).enqueue(2)
    assert _orders() == [2]
    assert _kinds() == [("send_receipt", {"order_id": 2})]


def test_enqueue_on_commit_waits_for_the_commit(project: Path) -> None:
    from django.db import transaction
    from shop.jobs import send_receipt

    from offload.integrations.django import enqueue_on_commit
    from offload.integrations.django.testing import drain

    drain()
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(send_receipt, 3)
        raise RuntimeError("rolled back")
    assert _kinds() == []
    with transaction.atomic():
        enqueue_on_commit(send_receipt, 4)
        assert _kinds() == []
    assert _kinds() == [("send_receipt", {"order_id": 4})]


def test_the_test_mixin_asserts_and_drains(project: Path) -> None:
    from shop.jobs import send_receipt

    from offload.integrations.django.testing import OffloadTestMixin, drain

    drain()
    case = OffloadTestMixin()
    send_receipt.enqueue(5)
    case.assertEnqueued("send_receipt", args={"order_id": 5})
    assert case.drain_jobs().completed == 1
    case.assertNotEnqueued("send_receipt")


def _manage(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OFFLOAD_DJANGO_DB": str(db), "DJANGO_SETTINGS_MODULE": ""}
    env.pop("DJANGO_SETTINGS_MODULE")
    return subprocess.run(
        [sys.executable, "manage.py", "offload", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_manage_py_offload_runs_the_offload_command_on_the_app(project: Path) -> None:
    from shop.jobs import send_receipt

    from offload.integrations.django.testing import drain

    drain()
    send_receipt.enqueue(6)
    listed = _manage("jobs", "list", "--state", "available", db=project)
    assert listed.returncode == 0, listed.stderr
    assert "send_receipt" in listed.stdout
    ran = _manage("worker", "--burst", db=project)
    assert ran.returncode == 0, ran.stderr
    assert _kinds() == []
    helped = _manage("--help", db=project)
    assert helped.returncode == 0 and "worker" in helped.stdout


_ON_POSTGRES = """
import django
django.setup()
from django.db import connection, transaction
from shop.jobs import send_receipt
from offload.integrations.django import connection as offload_connection
from offload.testing import enqueued

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE orders (id integer PRIMARY KEY)")
try:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO orders (id) VALUES (1)")
        send_receipt.options(connection=offload_connection()).enqueue(1)
        raise RuntimeError("payment refused")
except RuntimeError:
    pass
with transaction.atomic():
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO orders (id) VALUES (2)")
    send_receipt.options(connection=offload_connection()).enqueue(2)
with connection.cursor() as cursor:
    cursor.execute("SELECT id FROM orders")
    print([row[0] for row in cursor.fetchall()], [r.args for r in enqueued(send_receipt.app)])
"""


def test_one_transaction_on_postgres_too(tmp_path: Path) -> None:
    from tests._engines import drop_schema, make_url

    url, schema = make_url("postgres", tmp_path)
    assert schema is not None
    import psycopg

    from tests._engines import PG_URL

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    env = {**os.environ, "OFFLOAD_DJANGO_PG": url, "DJANGO_SETTINGS_MODULE": "project_settings"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _ON_POSTGRES],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        drop_schema(schema)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[2] [{'order_id': 2}]"


def test_call_command_runs_the_offload_command_in_process(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.core.management import call_command
    from shop.jobs import send_receipt

    from offload.integrations.django.testing import drain

    drain()
    send_receipt.enqueue(8)
    call_command("offload", "jobs", "list", "--state", "available")
    assert "send_receipt" in capsys.readouterr().out
    assert _kinds() == [("send_receipt", {"order_id": 8})]  # the app works on after the command


def test_the_app_is_named_where_each_command_takes_it() -> None:
    from offload.integrations.django.management.commands.offload import APP_PATH, with_app

    assert with_app(["jobs", "list", "-s", "dead"]) == [
        "jobs",
        "list",
        "--app",
        APP_PATH,
        "-s",
        "dead",
    ]
    assert with_app(["worker", "--burst"]) == ["worker", APP_PATH, "--burst"]
    assert with_app(["enqueue", "send_receipt", "order_id=1"]) == [
        "enqueue",
        APP_PATH,
        "send_receipt",
        "order_id=1",
    ]
    for unchanged in (["jobs", "list", "--app", "mine:app"], ["--help"], ["nope"], []):
        assert with_app(unchanged) == unchanged
