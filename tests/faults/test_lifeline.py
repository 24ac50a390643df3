"""Each of the two ways a supervised worker notices its supervisor's death, on its own: the
pipe's end of file, the parent-death signal, and a supervisor already gone when it looked
(offload/worker/_lifeline.py). test_crashes.py kills a real supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration._harness import REPO, wait_until

from ._procs import kill, wait_gone

CHILD = """
import signal, sys, threading
from offload.worker import watch_supervisor
stopped = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopped.set())
print("watching", watch_supervisor(stopped.set), flush=True)
print("stopped" if stopped.wait(30) else "still running", flush=True)
"""

MIDDLE = """
import os, subprocess, sys, time
read_end = int(sys.argv[1])
env = {**os.environ, "OFFLOAD_SUPERVISOR": f"{os.getpid()}:{read_end}"}
with open(sys.argv[2], "wb") as out:
    child = subprocess.Popen([sys.executable, "-c", sys.argv[3]], pass_fds=(read_end,), env=env,
                             stdout=out)
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.fixture
def env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


class Pipe:
    """A pipe whose ends are closed once each."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe()
        self.open = {self.read, self.write}

    def close(self, fd: int) -> None:
        if fd in self.open:
            self.open.discard(fd)
            os.close(fd)


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    made = Pipe()
    yield made
    for fd in list(made.open):
        made.close(fd)


def test_the_pipes_end_of_file_stops_a_worker_whose_parent_lives(
    tmp_path: Path, env: dict[str, str], pipe: Pipe
) -> None:
    read_end = pipe.read
    out = tmp_path / "out"
    with open(out, "wb") as stdout:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            pass_fds=(read_end,),
            env={**env, "OFFLOAD_SUPERVISOR": f"{os.getpid()}:{read_end}"},
            stdout=stdout,
        )
    try:
        wait_until(lambda: "watching True" in out.read_text(), what="the child to watch")
        assert child.poll() is None
        pipe.close(pipe.write)  # what the kernel does when the supervisor dies
        assert child.wait(10) == 0
        assert out.read_text().splitlines()[-1] == "stopped"
    finally:
        child.kill()
        child.wait()


def test_the_parent_death_signal_stops_a_worker_whose_pipe_stays_open(
    tmp_path: Path, env: dict[str, str], pipe: Pipe
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    read_end = pipe.read  # this test holds the write end: no end of file
    out = tmp_path / "out"
    middle = subprocess.Popen(
        [sys.executable, "-c", MIDDLE, str(read_end), str(out), CHILD],
        pass_fds=(read_end,),
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert middle.stdout is not None
    child = int(middle.stdout.readline())
    try:
        wait_until(lambda: "watching True" in out.read_text(), what="the child to watch")
        middle.send_signal(signal.SIGKILL)
        middle.wait()
        wait_gone([child], timeout=10)
        assert out.read_text().splitlines()[-1] == "stopped"
    finally:
        kill([child])
        middle.kill()
        middle.wait()
        middle.stdout.close()


def test_a_supervisor_gone_before_the_worker_looked_stops_it_at_once(
    env: dict[str, str], pipe: Pipe
) -> None:
    read_end = pipe.read
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        pass_fds=(read_end,),
        env={**env, "OFFLOAD_SUPERVISOR": f"1:{read_end}"},  # not its parent: it died
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.splitlines() == ["watching True", "stopped"]
    assert "the supervisor is gone before this worker started" in done.stderr


def test_a_worker_without_a_supervisor_watches_nothing(env: dict[str, str]) -> None:
    code = "from offload.worker import watch_supervisor; print(watch_supervisor(lambda: None))"
    env.pop("OFFLOAD_SUPERVISOR", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == "False"
