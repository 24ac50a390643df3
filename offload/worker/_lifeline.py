"""A supervised worker process stops when its supervisor dies, as it does on SIGTERM.

Without this, SIGKILL of `offload worker --processes N` left its N children running and
claiming; a restarted service then ran 2N. The supervisor tells each child its pid and the read
end of a pipe whose write end only the supervisor holds (`child_env`). The child
(`watch_supervisor`) asks Linux for SIGTERM when its parent dies (PR_SET_PDEATHSIG), checks that
the parent did not die before it asked, and also waits for the pipe's end of file in a thread:
the kernel closes the write end however the supervisor ends, on every platform.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("offload.worker")
ENV = "OFFLOAD_SUPERVISOR"  # "<supervisor pid>:<fd of the pipe's read end>"
_PR_SET_PDEATHSIG = 1


def child_env(read_fd: int) -> dict[str, str]:
    """The environment entry that tells a child of this process how to watch it."""
    return {ENV: f"{os.getpid()}:{read_fd}"}


def watch_supervisor(stop: Callable[[], None]) -> bool:
    """In a child of a supervisor: call `stop` (from another thread) once the supervisor is
    gone; False when this process has no supervisor to watch."""
    value = os.environ.pop(ENV, None)  # not for processes the jobs may start
    if not value:
        return False
    try:
        pid, fd = (int(part) for part in value.split(":"))
    except ValueError:
        log.warning("ignoring %s=%r: expected <pid>:<fd>", ENV, value)
        return False
    _ask_parent_death_signal()
    if os.getppid() != pid:  # it died before the signal was asked for
        _gone(stop, "before this worker started")
        return True
    threading.Thread(
        target=_wait_for_end_of_file, args=(fd, stop), name="offload-lifeline", daemon=True
    ).start()
    return True


def _ask_parent_death_signal() -> None:
    """Linux: SIGTERM to this process when the thread that started it ends (the supervisor's
    main thread). Elsewhere the pipe alone tells."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            log.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError):
        log.debug("no prctl: the supervisor's death is noticed through its pipe only")


def _wait_for_end_of_file(fd: int, stop: Callable[[], None]) -> None:
    while True:
        try:
            if not os.read(fd, 1):  # the supervisor never writes: end of file means it died
                break
        except InterruptedError:
            continue
        except OSError as exc:
            log.warning("cannot watch the supervisor (%s); it may outlive this worker", exc)
            return
    _gone(stop, "")


def _gone(stop: Callable[[], None], when: str) -> None:
    log.warning(
        "the supervisor is gone%s: finishing running jobs and stopping", when and f" {when}"
    )
    stop()
