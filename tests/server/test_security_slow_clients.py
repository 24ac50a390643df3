"""`offload server` cuts slow clients off: a half-sent header and a stalled body are closed
after the configured timeouts, and connections past `--max-connections` are answered 503."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._wait import eventually

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0  # generous: the timeouts below are 2 s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _request(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
        s.sendall(raw)
        return _read_to_end(s)


def _read_to_end(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails past the deadline)."""
    s.settimeout(DEADLINE)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "OFFLOAD_TOKENS": "", "PYTHONPATH": str(REPO)}
    env.pop("OFFLOAD_URL", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "offload",
            "server",
            "--url",
            f"sqlite:///{tmp_path / 'jobs.db'}",
            "--port",
            str(port),
            "--header-timeout",
            "2",
            "--body-timeout",
            "2",
            "--keep-alive-timeout",
            "2",
            "--max-connections",
            "4",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up() -> bool:
        try:
            return b" 200 " in _request(
                port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
        except OSError:
            return False

    try:
        eventually(up, timeout=DEADLINE, what="the server to answer")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=DEADLINE)


def test_slow_clients_are_cut_off(served: int) -> None:
    port = served
    # A half-sent header and a stalled body: both connections are closed by the server.
    half_header = socket.create_connection(("127.0.0.1", port))
    half_header.sendall(b"GET /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    stalled_body = socket.create_connection(("127.0.0.1", port))
    stalled_body.sendall(
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"kind": '
    )
    started = time.monotonic()
    with half_header, stalled_body:
        assert _read_to_end(half_header) == b""  # closed without an answer
        _read_to_end(stalled_body)  # closed (whatever it answered first)
        assert time.monotonic() - started < DEADLINE
    # A request sent whole is served as before.
    answer = _request(
        port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer


def test_connections_past_the_limit_get_503(served: int) -> None:
    port = served
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:

        def refused() -> bool:
            answer = _request(
                port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            return answer.startswith(b"HTTP/1.1 503")

        # The idle connections are closed after the header timeout; until then, no room.
        eventually(refused, timeout=DEADLINE, what="a request past the limit to get 503")
    finally:
        for s in idle:
            s.close()
