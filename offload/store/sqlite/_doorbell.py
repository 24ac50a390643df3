"""A doorbell beside a SQLite file, so idle workers start a new job without waiting for a poll.

SQLite has no LISTEN/NOTIFY. A worker's listener binds a datagram socket and leaves a marker
file named after it in `<database>-wake/`; a process that commits available jobs sends one
byte to every marked socket. The `PRAGMA data_version` poll stays as the fallback for commits
that ring no bell (an application's own transaction). Sockets live in Linux's abstract
namespace (no path length limit, gone with their process); elsewhere there is no doorbell.

A token of a rate limit comes back with time, not with a commit: a claim that skipped jobs for
want of one asks the doorbell to ring this process's own listeners when it is due (`ring_in`).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

_RELIST_SECONDS = 1.0  # a folder's mtime is coarse: look again at least this often
_SENDER: socket.socket | None = None
_RINGER_IDLE = 60.0  # seconds the thread of timed rings waits for work before it ends


def _sender() -> socket.socket:
    """One unbound socket per process sends every ring (it is never closed)."""
    global _SENDER
    if _SENDER is None:
        _SENDER = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _SENDER.setblocking(False)
    return _SENDER


def supported() -> bool:
    return sys.platform.startswith("linux")


class Doorbell:
    """The producer's side: rings every listener that has a marker in the folder."""

    def __init__(self, db_path: str, folder_mode: int = 0o700) -> None:
        self.folder = os.path.abspath(db_path) + "-wake"
        self.folder_mode = folder_mode  # the folder is created private, as the store file is
        self._prefix = (
            b"\0offload-"
            + hashlib.blake2b(self.folder.encode(), digest_size=8).hexdigest().encode()
        )
        self._names: list[str] = []
        self._seen: tuple[int, float] = (-1, 0.0)
        self._own: set[str] = set()  # this process's bells (see ring_in)
        self._timer = threading.Condition()
        self._ring_at = math.inf  # monotonic time of the next ring of our own bells
        self._timer_pid = 0  # the process whose thread rings them

    def address(self, name: str) -> bytes:
        return self._prefix + b"-" + name.encode()

    def _listeners(self) -> list[str]:
        try:
            mtime = os.stat(self.folder).st_mtime_ns
        except OSError:
            return []
        now = time.monotonic()
        if mtime != self._seen[0] or now - self._seen[1] > _RELIST_SECONDS:
            try:
                self._names = os.listdir(self.folder)
            except OSError:
                self._names = []
            self._seen = (mtime, now)
        return self._names

    def ring(self) -> None:
        """Wake every listening worker; never blocks and never raises."""
        if not supported():
            return
        names = self._listeners()
        if not names:
            return
        sock = _sender()
        for name in names:
            try:
                sock.sendto(b"!", self.address(name))
            except BlockingIOError:
                continue  # its buffer is full of rings already: it will wake
            except (ConnectionRefusedError, FileNotFoundError):
                self._forget(name)  # its process is gone (killed): drop the marker
            except OSError:
                continue  # a ring is a hint: the listener's poll catches what it misses

    def ring_in(self, seconds: float | None) -> None:
        """Ring this process's own listeners in `seconds` (the earliest time asked for wins;
        None asks nothing), from a thread of the doorbell's own; never blocks or raises."""
        if seconds is None or not supported():
            return
        at = time.monotonic() + max(seconds, 0.0)
        with self._timer:
            if at >= self._ring_at and self._timer_pid == os.getpid():
                return
            self._ring_at = at
            if self._timer_pid != os.getpid():  # none yet, or forked: the thread stayed behind
                self._timer_pid = os.getpid()
                ringer = threading.Thread(target=self._ring_own, name="offload-doorbell")
                ringer.daemon = True
                ringer.start()
            self._timer.notify()

    def _ring_own(self) -> None:
        sock = _sender()
        while True:
            with self._timer:
                left = self._ring_at - time.monotonic()
                if left == math.inf:
                    self._timer.wait(_RINGER_IDLE)
                    if self._ring_at == math.inf:  # idle: the next ring_in starts a thread
                        self._timer_pid = 0
                        return
                    continue
                if left > 0:
                    self._timer.wait(left)
                    continue
                self._ring_at = math.inf
                names = list(self._own)
            for name in names:
                try:
                    sock.sendto(b"!", self.address(name))
                except BlockingIOError:
                    continue  # rung already
                except OSError:
                    self._own.discard(name)  # closed since

    def _forget(self, name: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.folder, name))
        self._seen = (-1, 0.0)

    def bell(self) -> Bell | None:
        """The worker's side: a socket that turns readable when rung; None where unsupported."""
        if not supported():
            return None
        try:
            os.makedirs(self.folder, mode=self.folder_mode, exist_ok=True)
            name = f"{os.getpid()}-{secrets.token_hex(4)}"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(self.address(name))
            sock.setblocking(False)
            marker = os.path.join(self.folder, name)
            Path(marker).touch(exist_ok=False)
        except OSError:
            return None
        self._own.add(name)
        return Bell(sock, marker)


class Bell:
    """A listening socket and its marker file."""

    def __init__(self, sock: socket.socket, marker: str) -> None:
        self.sock = sock
        self.marker = marker

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> None:
        """Read every ring that arrived, so the next wait blocks again."""
        with contextlib.suppress(OSError):  # BlockingIOError: none left
            while self.sock.recv(64):
                continue

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.marker)
        self.sock.close()
