"""`offload top`: one frame with --once (tables or JSON), and the live view on a terminal,
which redraws until `q` is pressed."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

from ._helpers import CLI, Seeded, wait_until


def test_once_as_json(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    frame = cli("top", "--url", url, "--once", "--json").json()
    assert frame["engine"] == "sqlite" and frame["url"] == url
    assert frame["queues"]["default"]["dead"] == 1
    assert frame["queues"]["nobody"]["available"] == 1
    assert frame["totals"]["completed"] == 2
    rates = frame["rates"]
    assert rates["window_seconds"] > 0
    assert rates["completed_per_second"] >= 0 and rates["failed_per_second"] >= 0
    assert frame["workers"] == []
    (failure,) = frame["failures"]
    assert failure["id"] == ids.exploded and failure["error"] == "RuntimeError: kaput"


def test_once_as_tables(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, _ = seeded
    out = cli("top", "--url", url, "--once").out
    lines = out.splitlines()
    assert lines[0].startswith("offload top  " + url)
    assert "completed " in lines[1] and "/s" in lines[1]
    header = next(line for line in lines if line.startswith("QUEUE"))
    assert header.split() == [
        "QUEUE", "AVAILABLE", "RUNNING", "SCHEDULED", "RETRYABLE", "DEAD", "OLDEST"
    ]  # fmt: skip
    nobody = next(line for line in lines if line.startswith("nobody"))
    assert nobody.split()[:-1] == ["nobody", "1", "0", "0", "0", "0"]
    frame = cli("top", "--url", url, "--once", "--json").json()
    assert set(frame["oldest_age_seconds"]) == {"nobody"}
    assert "Workers (0)" in out and "Recent failures" in out and "RuntimeError: kaput" in out


def test_live_view_redraws_until_q(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, _ = seeded
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "offload", "top", "--url", url, "--interval", "0.2"],
        cwd=cli.cwd,
        env=cli.env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = bytearray()

    def read() -> bytes:
        if select.select([leader], [], [], 0.1)[0]:
            try:
                seen.extend(os.read(leader, 65536))
            except OSError:  # the child closed the terminal
                pass
        return bytes(seen)

    try:
        wait_until(lambda: read().count(b"q: quit") >= 2, "two frames on the terminal")
        assert b"\x1b[?1049h" in seen  # the alternate screen, as top uses
        os.write(leader, b"q")
        wait_until(lambda: read() and proc.poll() is not None, "top to quit on q")
        assert proc.returncode == 0
        assert seen.rstrip().endswith(b"\x1b[?1049l")  # the terminal is given back
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(leader)


def test_once_shows_what_is_paused(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, _ = seeded
    cli("queues", "pause", "nobody", "--url", url)
    frame = cli("top", "--url", url, "--once", "--json").json()
    assert frame["paused"] == {"queues": ["nobody"], "kinds": []}
    out = cli("top", "--url", url, "--once").out
    assert "paused: queues nobody; kinds -" in out
