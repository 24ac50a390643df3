"""`offload worker --reload`: a change to a .py file of the project restarts the worker."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from ._helpers import CLI, opened, wait_until

APP_SOURCE = """
from offload import Offload

app = Offload(lease_seconds=5.0)


@app.job()
def hello() -> str:
    return "hello"
"""


def _worker_pids(url: str) -> set[int]:
    with opened(url) as store:
        return {w.pid for w in store.worker_list(60.0)}


def test_a_changed_file_restarts_the_worker(tmp_path: Path, fresh_url: str) -> None:
    import watchfiles  # noqa: F401 - the test extra installs the reload extra

    (tmp_path / "devapp.py").write_text(APP_SOURCE)
    log = tmp_path / "reload.log"
    cli = CLI(tmp_path)
    proc = cli.popen(
        "worker", "devapp:app", "--url", fresh_url, "--reload", "--poll-interval", "0.2", log=log
    )
    try:
        first = wait_until(lambda: _worker_pids(fresh_url), "the first worker to register")
        assert proc.pid not in first  # the worker runs in a child of the reloader
        wait_until(lambda: "watching .py files" in log.read_text(), "the watcher to start")
        (tmp_path / "devapp.py").write_text(APP_SOURCE + "\n# edited\n")
        second = wait_until(
            lambda: _worker_pids(fresh_url) - first, "a new worker after the change"
        )
        assert "devapp.py changed; restarting the worker" in log.read_text()
        assert not second & first
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(30) == 0, log.read_text()
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert _worker_pids(fresh_url) == set()  # the last worker stopped and deregistered


def test_reload_without_watchfiles_says_what_to_install(tmp_path: Path, fresh_url: str) -> None:
    (tmp_path / "devapp.py").write_text(APP_SOURCE)
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "watchfiles.py").write_text("raise ImportError('no watchfiles here')\n")
    cli = CLI(tmp_path)
    cli.env["PYTHONPATH"] = f"{blocker}:{cli.env['PYTHONPATH']}"
    result = cli("worker", "devapp:app", "--url", fresh_url, "--reload", code=2)
    assert "pip install 'offload[reload]'" in result.err
