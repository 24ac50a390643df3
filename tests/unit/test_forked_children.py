"""The supervisor's forked children (worker/_forked.py): they start with offload imported, but
run nothing until the supervisor's check passes (`release`), and a failed check (`abandon`)
ends them without running anything. Each scenario runs in a fresh interpreter, so that no
thread of the test runner stands in the way of the fork (a fork needs a single thread)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux")

SCENARIO = """
import atexit, os, sys, threading
from pathlib import Path
from offload.worker._lifeline import ENV
from offload.worker._supervisor import Supervisor
from tests._wait import eventually

out = Path(sys.argv[1])
how = sys.argv[2]


def child_main() -> int:
    pid = os.getpid()
    atexit.register(lambda: (out / f"exit-{pid}").write_text("exited"))
    (out / f"ran-{os.getpid()}").write_text(
        f"{os.getpgid(0)} {os.environ.get(ENV, '')} {os.getppid()}"
    )
    return 7


if how == "thread":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
supervisor = Supervisor(2, ["worker", "app:app"])
forked = supervisor.fork(child_main)
print("forked" if forked else "not forked")
if not forked:
    sys.exit(0)
pids = [child.pid for child in supervisor.children]
# Held at the gate: the children exist but wait for the check.
assert all(child.poll() is None for child in supervisor.children)
if how == "abandon":
    supervisor.abandon()
    print("children", *supervisor.children)
else:
    supervisor.release()
    codes = eventually(
        lambda: [c.poll() for c in supervisor.children]
        if all(c.poll() is not None for c in supervisor.children) else None,
        what="both children to exit",
    )
    print("codes", *codes)
print("pids", *pids)
print("me", os.getpid())
"""


def scenario(tmp_path: Path, how: str) -> tuple[dict[str, list[str]], dict[int, list[str]]]:
    """Run SCENARIO: what it printed (by first word) and what each child recorded (by pid)."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(tmp_path), how],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    printed = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
    ran = {
        int(path.name.removeprefix("ran-")): path.read_text().split()
        for path in tmp_path.glob("ran-*")
    }
    return printed, ran


def exit_handlers_run(tmp_path: Path) -> list[int]:
    """The children whose exit handler (registered by child_main) ran."""
    return sorted(int(path.name.removeprefix("exit-")) for path in tmp_path.glob("exit-*"))


def test_released_children_run_once_each_in_a_group_of_their_own_watching_the_supervisor(
    tmp_path: Path,
) -> None:
    printed, ran = scenario(tmp_path, "release")
    assert "forked" in printed
    assert printed["codes"] == ["7", "7"], "a child's exit code is what child_main returned"
    pids = [int(pid) for pid in printed["pids"]]
    me = printed["me"][0]
    assert sorted(ran) == sorted(pids), "each child ran child_main once"
    assert exit_handlers_run(tmp_path) == sorted(pids), "a child runs its exit handlers"
    for pid, (group, lifeline, parent) in ran.items():
        assert int(group) == pid, "a child is in a process group of its own"
        assert lifeline.split(":")[0] == me, "a child watches the supervisor's lifeline"
        assert parent == me


def test_children_of_a_failed_check_run_nothing_and_are_reaped(tmp_path: Path) -> None:
    printed, ran = scenario(tmp_path, "abandon")
    assert "forked" in printed
    assert printed["children"] == ["None", "None"], "abandoned children are reaped"
    assert ran == {}, "an abandoned child ran the worker"


def test_a_supervisor_with_a_thread_running_does_not_fork(tmp_path: Path) -> None:
    printed, ran = scenario(tmp_path, "thread")
    assert "not" in printed, printed
    assert ran == {}
