"""A PostgreSQL URL that cannot work fails every command within seconds, with the cause.

A closed port fails at once ("connection refused", exit 1); a database that does not exist is
a usage error (exit 2) naming it; a server that accepts the connection and never answers is
given up after the connect timeout (5 s by default, `?connect_timeout=` in the URL). The
subprocess timeouts are the bound: none of these may wait the 30 s of a pool's patience. A
worker waits for a store that is down (it may be starting), but says why at once; a burst
worker fails instead.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._engines import PG_URL, need_postgres

from ._helpers import CLI, wait_until

FAST = 15.0  # seconds: a command that waits for a pool's 30 s patience overruns this
# Each command opens the store its own way; between them, the two lists cover them all.
CLOSED_PORT = [
    ("stats",),
    ("rules", "list"),
    ("worker", "cliapp:app", "--burst", "--processes", "2"),
]
MISSING_DATABASE = [
    ("jobs", "list"),
    ("migrate",),
    ("worker", "cliapp:app"),
    ("server", "cliapp:app", "--port", "0"),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


@pytest.mark.parametrize("command", CLOSED_PORT, ids=" ".join)
def test_a_closed_port_fails_at_once_with_the_cause(cli: CLI, command: tuple[str, ...]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"
    result = cli(*command, "--url", url, code=1, timeout=FAST)
    assert "cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:" in result.err
    assert "Connection refused" in result.err


@pytest.mark.parametrize("command", MISSING_DATABASE, ids=" ".join)
def test_a_missing_database_is_named(cli: CLI, command: tuple[str, ...]) -> None:
    need_postgres()
    url = PG_URL.rsplit("/", 1)[0] + "/no_such_database_here"
    result = cli(*command, "--url", url, code=2, timeout=FAST)
    assert 'database "no_such_database_here" does not exist' in result.err


def test_a_silent_server_is_given_up_after_the_urls_connect_timeout(
    cli: CLI, silent_port: int
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{silent_port}/test?connect_timeout=1"
    result = cli("stats", "--url", url, code=1, timeout=FAST)
    assert "connection timeout expired" in result.err


def test_a_worker_waits_for_a_store_that_is_down_and_says_why_at_once(
    cli: CLI, tmp_path: Path
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"
    log = tmp_path / "worker.log"
    proc = cli.popen("worker", "cliapp:app", "--url", url, log=log)
    try:
        wait_until(lambda: "Connection refused" in log.read_text(), "the cause", timeout=FAST)
        assert "reaching the store failed" in log.read_text() and proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
