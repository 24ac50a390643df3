"""The signal relay runs a handler on a thread of its own, so a signal that arrives while the
main thread holds a lock the handler needs cannot deadlock the process (a worker once hung on
its first SIGTERM: the handler set an Event whose lock the interrupted `Event.wait` held)."""

from __future__ import annotations

import os
import signal
import threading

from offload.worker._signals import SignalRelay


def test_a_handler_that_needs_a_lock_the_interrupted_thread_holds_does_not_deadlock() -> None:
    lock = threading.Lock()
    handled = threading.Event()
    seen: list[tuple[int, str]] = []

    def handle(signum: int) -> None:
        with lock:  # what stop() did: take a lock the main thread may hold
            seen.append((signum, threading.current_thread().name))
        handled.set()

    previous = signal.getsignal(signal.SIGUSR1)
    try:
        SignalRelay(handle, signal.SIGUSR1)
        with lock:
            os.kill(os.getpid(), signal.SIGUSR1)
            # A handler run here, in the main thread, would wait for `lock` for ever.
            for _ in range(1000):  # bytecodes for the interpreter to deliver the signal
                pass
            assert not handled.is_set()
        assert handled.wait(10), "the relayed handler never ran"
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [(signal.SIGUSR1, "offload-signals")]
