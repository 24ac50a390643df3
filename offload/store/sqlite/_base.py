"""The SQLite engine's connections and executors, which every operation family runs on.

One connection per thread, WAL mode, `BEGIN IMMEDIATE` for every write so that writers queue on
the busy handler instead of failing half-way; a lock held past the busy timeout is retried and
only then surfaces as `StoreBusyError`. A damaged file surfaces as `StoreCorruptError` and a full
disk as `StoreFullError` (`_errors.py`), never as a raw driver error. The clock is this
machine's, which every process using the file shares.

An executor is this engine bound to one connection (`_bound`): a store transaction holds a
connection of its own for its block (`transaction()`), a caller's connection is used as it is
(`bind()`). On an executor `_tx` runs its body on that connection without BEGIN, COMMIT or
retry, and `_read` reads there, so every operation of every family works on it unchanged.
"""

from __future__ import annotations

import copy
import logging
import os
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from offload._errors import ConfigurationError, StoreBusyError, StoreError
from offload.dispatch import _ordering as ordering
from offload.store._contract import Listener, Store, joined
from offload.store._outbox import unwrap
from offload.store._sql import migrations, queries
from offload.store.sqlite._doorbell import Bell, Doorbell
from offload.store.sqlite._errors import CHECK_MODES, lost_wal_pages, quick_check, translate

T = TypeVar("T")
log = logging.getLogger("offload.store")
_SYNC_LEVELS = ("off", "normal", "full", "extra")
_BELL_POLL_INTERVAL = 0.01  # with a doorbell, the data_version poll is only a fallback
_SPARE_CONNECTIONS = 4  # connections of ended store transactions kept for the next ones


DEFAULT_FILE_MODE = 0o600  # the store holds job data: only its owner reads it, unless told


def file_mode(options: dict[str, str], url: str) -> int:
    """The mode of a store file this engine creates (`?file_mode=0640`; default 0600). Its WAL
    and shared-memory files get the same (SQLite copies it), the wake folder the same plus the
    matching search bits (0600 -> 0700, 0640 -> 0750)."""
    text = options.get("file_mode")
    if text is None:
        return DEFAULT_FILE_MODE
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and set(text) <= set("01234567")):
        raise ConfigurationError(f"file_mode={text!r} in {url!r}: give octal digits, e.g. 0640")
    mode = int(text, 8)
    if mode & 0o600 != 0o600 or mode > 0o777:
        raise ConfigurationError(
            f"file_mode={text!r} in {url!r}: the owner must read and write the file (0600 at "
            "least), and no special bits"
        )
    return mode


def folder_mode(mode: int) -> int:
    """A folder mode matching a file mode: search (x) wherever read (r) is allowed."""
    return mode | ((mode & 0o444) >> 2)


def create_private(path: str, mode: int) -> None:
    """Create an empty store file at `path` with `mode` (an empty file is an empty SQLite
    database) so that SQLite never creates it with the default, world-readable mode. A file
    that exists is left as it is."""
    if path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return  # another process made it first
    except OSError:
        return  # SQLite will report it in its own words
    try:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
    finally:
        os.close(fd)


def sqlite_path(url: str) -> tuple[str, dict[str, str]]:
    """The file path and options of a `sqlite:///path?synchronous=full&integrity_check=off`
    URL or a plain path."""
    if not url.startswith("sqlite:"):
        return url, {}
    parsed = urlparse(url)
    path = parsed.path
    if parsed.netloc:
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute/path.db"
        )
    if path.startswith("/"):
        path = path[1:]
    if not path:
        raise ConfigurationError(f"SQLite URL {url!r} names no file, e.g. sqlite:///jobs.db")
    options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    return path, options


class _DataVersionListener(Listener):
    """Wakes on a ring of the doorbell, or when a poll of `PRAGMA data_version` sees a commit."""

    def __init__(self, path: str, interval: float, bell: Bell | None) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._bell = bell
        # Rung commits wake at once; the poll only catches commits that ring no bell.
        self._interval = interval if bell is None else max(interval, _BELL_POLL_INTERVAL)
        self._version = self._read()

    def _read(self) -> int:
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            current = self._read()
            if current != self._version:
                self._version = current
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._bell is None:
                time.sleep(min(self._interval, left))
            elif select.select([self._bell], [], [], min(self._interval, left))[0]:
                self._bell.drain()
                self._version = self._read()
                return True

    def close(self) -> None:
        if self._bell is not None:
            self._bell.close()
        self._conn.close()


class _Rings:
    """The wake-ups a store transaction owes, rung once it has committed."""

    __slots__ = ("due",)

    def __init__(self) -> None:
        self.due = False


class SQLiteBase(Store):
    """Connections, transactions and executors of the SQLite engine; the operation families
    (`_jobs.py`, `_dispatch.py`, `_policy.py`, `_maintenance.py`, `_admin.py`, `_totals.py`)
    are mixed in on top of it by `SQLiteStore`."""

    engine = "sqlite"
    # On an executor: the connection every operation runs on, the rings its transaction owes
    # (None on a caller's connection, whose commit we never see), and whether it has ended.
    _bound: sqlite3.Connection | None = None
    _rings: _Rings | None = None
    _ended = False

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 30.0,
        poll_interval: float = 0.002,
    ) -> None:
        self.url = url
        self.path, options = sqlite_path(url)
        synchronous = options.get("synchronous", "normal").lower()
        if synchronous not in _SYNC_LEVELS:
            raise ConfigurationError(
                f"synchronous={synchronous!r} in {url!r}: choose one of {', '.join(_SYNC_LEVELS)}"
            )
        self.synchronous = synchronous
        integrity_check = options.get("integrity_check", "quick").lower()
        if integrity_check not in CHECK_MODES:
            raise ConfigurationError(
                f"integrity_check={integrity_check!r} in {url!r}: choose one of "
                f"{', '.join(CHECK_MODES)}"
            )
        self.integrity_check = integrity_check
        self.file_mode = file_mode(options, url)
        self.busy_timeout = busy_timeout
        self.poll_interval = poll_interval
        self._q = queries("sqlite")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._spare: list[sqlite3.Connection] = []  # for store transactions (`transaction`)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._doorbell = Doorbell(self.path, folder_mode(self.file_mode))
        self._clock_writes = ordering.ClockWrites()  # when claims move lane clocks
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ConfigurationError(f"the folder of SQLite file {self.path!r} does not exist")

    # --- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            self._forked()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _forked(self) -> None:
        """In a forked child: the connections of the parent are not ours to use."""
        self._local = threading.local()
        self._all = []
        self._spare = []
        self._pid = os.getpid()

    def _connect(self) -> sqlite3.Connection:
        """A new connection in WAL mode with the URL's durability; a damaged file or a full
        disk raises its typed error here already. A missing file is created with `file_mode`."""
        create_private(self.path, self.file_mode)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(min(self.busy_timeout, 5.0) * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigurationError(f"SQLite file {self.path!r} cannot use WAL mode ({mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                self._raise_typed(exc)
            raise
        return conn

    def _raise_typed(self, exc: sqlite3.Error) -> None:
        """Raise the typed error for `exc` if it has one (the caller re-raises `exc` if not)."""
        typed = translate(exc, self.path)
        if typed is not None:
            raise typed from exc

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def check_integrity(self) -> None:
        """Before a worker or a command uses the file: say what a lost write-ahead log took
        with it, then run a bounded `PRAGMA quick_check` (unless the URL says
        `integrity_check=off`). A damaged file raises `StoreCorruptError`; a file that does not
        exist yet has nothing to check."""
        if not os.path.exists(self.path):
            return
        lost = lost_wal_pages(self.path)
        if lost:
            log.warning(
                "the write-ahead log of %s (%s-wal) is missing: %d committed pages that were "
                "not yet copied into the file are lost, so the last transactions before the "
                "stop (jobs enqueued, claimed or finished then) are undone; checking the file",
                self.path,
                self.path,
                lost,
            )
        if self.integrity_check == "off":
            return
        conn = self._connect()
        try:
            quick_check(conn, self.path)
        except sqlite3.Error as exc:
            self._raise_typed(exc)
            raise
        finally:
            conn.close()

    def _retrying(self, work: Callable[[], T]) -> T:
        """Run `work`, retrying while the database is locked, up to the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while True:
            try:
                return work()
            except sqlite3.Error as exc:
                self._raise_typed(exc)
                if not _busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"SQLite file {self.path!r} stayed locked for {self.busy_timeout:.0f}s; "
                        "another process holds a long write transaction"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run `body` in a write transaction of our own: `BEGIN IMMEDIATE` on this thread's
        connection. A plain function rather than a context manager: it runs once per store
        operation, and the generator machinery of `@contextmanager` costs more than the rest
        of this wrapper."""
        own = self._conn()
        own.execute("BEGIN IMMEDIATE")
        try:
            result = body(own)
            own.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (a full disk) may leave the transaction open, or SQLite may have
            # rolled it back already: either way none of it stays, and the connection is free.
            if own.in_transaction:
                with suppress(sqlite3.Error):
                    own.execute("ROLLBACK")
            raise
        return result

    def _on_bound(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the executor's connection, driver errors typed, no retry: a retry
        would repeat only part of the enclosing transaction."""
        bound = self._bound
        assert bound is not None
        if self._ended:
            raise StoreError(
                "this store transaction has ended (committed or rolled back): run the "
                "operation inside its `with` block, or open a new transaction"
            )
        try:
            return work(bound)
        except sqlite3.Error as exc:
            self._raise_typed(exc)
            raise

    def _tx(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run `body` in a write transaction: the executor's, or one of our own (retried
        whole while the file is locked)."""
        if self._bound is not None:
            return self._on_bound(body)
        try:  # the first attempt directly: the common case needs no retry loop
            return self._write(body)
        except sqlite3.Error as exc:
            self._raise_typed(exc)
            if not _busy(exc):
                raise
        return self._retrying(lambda: self._write(body))

    def _rung(self, result: T, ring: bool) -> T:
        """Pass `result` through, having rung the doorbell if jobs became available: at once
        after our own commit, at the commit of a store transaction, and never on a caller's
        connection (its commit is the caller's; workers' polls see it)."""
        if ring:
            if self._bound is None:
                self._doorbell.ring()
            elif self._rings is not None:
                self._rings.due = True
        return result

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        if self._bound is not None:
            return self._on_bound(lambda c: c.execute(sql, params).fetchall())
        return self._retrying(lambda: self._conn().execute(sql, params).fetchall())

    # --- executors ---------------------------------------------------------------------
    def _executor(self, conn: sqlite3.Connection, rings: _Rings | None) -> SQLiteBase:
        """This engine bound to `conn`: a shallow copy sharing its connections, doorbell and
        caches, whose operations all run on `conn`."""
        view = copy.copy(self)
        view._bound = conn
        view._rings = rings
        view._ended = False
        view.in_transaction = True
        return view

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        if self._bound is not None:
            if self._ended:
                self._on_bound(lambda c: None)  # raises: the transaction has ended
            yield self  # joins the open transaction: its opener commits
            return
        conn = self._take_connection()
        try:
            self._retrying(lambda: conn.execute("BEGIN IMMEDIATE"))
        except BaseException:
            self._give_back(conn)
            raise
        rings = _Rings()
        tx = self._executor(conn, rings)
        try:
            yield tx
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._raise_typed(exc)
                raise
        except BaseException:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        finally:
            tx._ended = True
            self._give_back(conn)
        if rings.due:
            self._doorbell.ring()

    def _take_connection(self) -> sqlite3.Connection:
        """A connection for one store transaction, apart from the threads' own, so that the
        store's one-shot operations never run inside a transaction left open meanwhile."""
        if self._pid != os.getpid():
            self._forked()
        with self._lock:
            if self._spare:
                return self._spare.pop()
        conn = self._connect()
        with self._lock:
            self._all.append(conn)
        return conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if conn in self._all and len(self._spare) < _SPARE_CONNECTIONS:
                self._spare.append(conn)
                return
            if conn in self._all:
                self._all.remove(conn)
        with suppress(sqlite3.Error):
            conn.close()

    def bind(self, conn: Any) -> Store:
        executor = joined(self, conn)
        if executor is not None:
            return executor
        dialect, raw = unwrap(conn)
        if dialect != "sqlite":
            raise ConfigurationError(
                f"a {dialect} connection ({type(conn).__module__}.{type(conn).__name__}) cannot "
                f"run operations of the sqlite store at {self.path!r}: pass a sqlite3 "
                "connection to that file (or a SQLAlchemy Connection or Session on it)"
            )
        return self._executor(raw, None)

    # --- lifecycle ---------------------------------------------------------------------
    def migrate(self) -> list[int]:
        def body(c: sqlite3.Connection) -> list[int]:
            c.execute(self._q["migrations_table"])
            done = {row[0] for row in c.execute(self._q["migrations_applied"])}
            applied = []
            for version, name, sql in migrations("sqlite"):
                if version in done:
                    continue
                for statement in _statements(sql):
                    c.execute(statement)
                c.execute(self._q["migration_record"], (version, name, time.time()))
                applied.append(version)
            return applied

        return self._tx(body)

    def schema_version(self) -> int:
        rows = self._read(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'offload_migrations'"
        )
        if not rows:
            return 0
        row = self._read("SELECT coalesce(max(version), 0) FROM offload_migrations")
        return int(row[0][0])

    def close(self) -> None:
        if self._bound is not None:
            return  # an executor owns no connection: its store closes them
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
            self._spare.clear()
        self._local = threading.local()

    def now(self) -> float:
        return time.time()

    def listener(self, queues: Sequence[str]) -> Listener:
        bell = self._doorbell.bell()
        try:
            return _DataVersionListener(self.path, self.poll_interval, bell)
        except sqlite3.Error as exc:
            if bell is not None:
                bell.close()
            self._raise_typed(exc)
            raise


def _busy(exc: sqlite3.Error) -> bool:
    """Whether `exc` says the file is locked by another connection (worth a retry)."""
    message = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons inside literals; a
    trigger's body, whose statements end in semicolons too, stays one statement)."""
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    out: list[str] = []
    pending = ""
    for part in body.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending.strip().removesuffix(";").strip())
            pending = ""
    if pending.strip(" \n;"):
        out.append(pending.strip().removesuffix(";").strip())
    return out
