"""`offload worker --reload`: run the worker in a child process and restart it when a `.py`
file of the project changes, for development.

The folders watched are the current one and the folder of the app's top-level package when it
lies elsewhere. Changes are read with `watchfiles` (the `reload` extra: the library uvicorn's
`--reload` uses), which batches a burst of saves into one restart. The child stops as on
SIGTERM (its running jobs get the grace period) and a new one starts; a child that exits by
itself (a syntax error in the app, say) is started again at the next change. SIGTERM or SIGINT
stop the child and then this process. The child is told this process's lifeline
(worker/_lifeline.py), so it stops if the reloader is killed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import click

from offload.worker._lifeline import child_env
from offload.worker._signals import SignalRelay

log = logging.getLogger("offload.reload")
INSTALL_HINT = "pip install 'offload[reload]'"


def watched_folders(app_path: str, cwd: Path) -> list[Path]:
    """The current folder, and the app's top-level package (or module's) folder when it lies
    outside of it (a package installed elsewhere in development mode)."""
    folders = [cwd.resolve()]
    top = app_path.partition(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top) if top else None
    except (ImportError, ValueError):
        spec = None
    origin = None
    if spec is not None:
        if spec.submodule_search_locations:
            origin = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin and spec.origin not in ("built-in", "frozen"):
            origin = Path(spec.origin).parent
    if origin is not None:
        origin = origin.resolve()
        if not origin.is_relative_to(folders[0]) and "site-packages" not in origin.parts:
            folders.append(origin)
    return folders


def require_watchfiles() -> None:
    """Fail with the install command when the optional `watchfiles` is missing."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise click.UsageError(f"--reload needs the watchfiles package: {INSTALL_HINT}") from None


class Reloader:
    """Runs `offload <child_argv>` and restarts it when a watched `.py` file changes."""

    def __init__(self, child_argv: Sequence[str], folders: Sequence[Path], grace: float) -> None:
        self.child_argv = list(child_argv)
        self.folders = list(folders)
        self.grace = grace
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self._reported = False  # the current child's own exit was logged
        self._lifeline, self._lifeline_end = os.pipe()

    def _start(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-m", "offload", *self.child_argv],
            process_group=0,  # a terminal's Ctrl-C reaches the reloader, which passes it on
            pass_fds=(self._lifeline,),
            env={**os.environ, **child_env(self._lifeline)},
        )
        self._reported = False
        log.info("reload: started the worker (pid %d)", self.child.pid)

    def _stop_child(self, signum: int = signal.SIGTERM) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signum)
        try:
            child.wait(self.grace + 5)
        except subprocess.TimeoutExpired:
            log.warning("reload: the worker did not stop in time; killing it")
            child.kill()
            child.wait()

    def _check_child(self) -> None:
        """Say once that the worker exited by itself (an error in the app, say)."""
        child = self.child
        if child is not None and child.poll() is not None and not self._reported:
            self._reported = True
            log.warning(
                "reload: the worker exited with %s; waiting for a change to start it again",
                child.returncode,
            )

    def _on_signal(self, signum: int) -> None:
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    def run(self) -> int:
        """Watch and restart until SIGTERM or SIGINT; the exit code of the last child."""
        import watchfiles

        SignalRelay(self._on_signal, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        shown = ", ".join(str(f) for f in self.folders)
        log.info("reload: watching .py files under %s", shown)
        self._start()
        for changes in watchfiles.watch(
            *self.folders,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=self.stopping,
            raise_interrupt=False,
            rust_timeout=500,
            yield_on_timeout=True,  # an empty batch twice a second: see whether the child died
        ):
            if self.stopping.is_set():
                break
            if not changes:
                self._check_child()
                continue
            names = sorted({os.path.relpath(path) for _, path in changes})
            log.warning("reload: %s changed; restarting the worker", ", ".join(names[:5]))
            self._stop_child()
            if self.stopping.is_set():
                break
            self._start()
        child = self.child
        if child is None:
            return 0
        try:
            return child.wait(self.grace + 5)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()
