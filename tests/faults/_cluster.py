"""A throwaway PostgreSQL cluster for fault tests that stop, restart or reconfigure a server.

The shared server at `$OFFLOAD_TEST_POSTGRES` is never touched: `Cluster` runs `initdb` into a
temp folder (as the `postgres` OS user when the tests run as root, since initdb refuses root),
starts it with `pg_ctl` on a free loopback port with the settings a test module asks for, and
stops and removes it at teardown, always. Binaries come from `$OFFLOAD_TEST_PG_BIN`, else the
newest `/usr/lib/postgresql/*/bin`, else `PATH`. Starting one costs about a second.

A test module asks for settings with a module-level `CLUSTER_SETTINGS = {"max_connections":
"12"}`, imports the fixtures (`from ._cluster import cluster_fixture, cluster_store_url_fixture`)
and uses the module-scoped `cluster`; `cluster_store_url` gives each test a schema of its own.
Without the binaries the tests skip on a developer's machine and fail in CI.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests._wait import eventually

BASE_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",  # a crash of the server (immediate stop) keeps the OS cache: WAL survives
    "full_page_writes": "off",
    "max_connections": "60",
    "shared_buffers": "16MB",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


def _bin_dir() -> Path | None:
    given = os.environ.get("OFFLOAD_TEST_PG_BIN")
    if given:
        return Path(given)
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted(
            (p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: [int(x) for x in p.name.split(".") if x.isdigit()],
        )
        if versions:
            return versions[-1] / "bin"
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need(message: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class Cluster:
    """One throwaway PostgreSQL server: its data folder, port and settings."""

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        bindir = _bin_dir()
        if bindir is None:
            _need("PostgreSQL's initdb/pg_ctl were not found: set OFFLOAD_TEST_PG_BIN")
        assert bindir is not None
        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="offload-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.settings = {**BASE_SETTINGS, **(settings or {})}
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                _need("running as root needs a `postgres` OS user for the throwaway cluster")
            assert self._user is not None
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._pg(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )

    # --- running the server's tools --------------------------------------------------
    def _pg(self, tool: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = self._user
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        if user is not None:
            env["HOME"] = user.pw_dir
        done = subprocess.run(
            [str(self.bin / tool), *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
            env=env,
            cwd=self.root,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n"
                f"{done.stderr}\n{self.log_tail()}"
            )
        return done

    def _options(self) -> str:
        opts = [f"-p {self.port}", f"-k {self.root}"]
        opts += [f"-c {k}={v}" for k, v in self.settings.items()]
        return " ".join(opts)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # --- the server's life -----------------------------------------------------------
    def start(self) -> None:
        data, log = str(self.data), str(self.log)
        self._pg("pg_ctl", "-D", data, "-l", log, "-o", self._options(), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart`; `immediate` stops without a checkpoint, so the server recovers from
        its WAL when it starts again, as after a crash."""
        data, log, opts = str(self.data), str(self.log), self._options()
        self._pg("pg_ctl", "-D", data, "-l", log, "-o", opts, "-m", mode, "-w", "-t", "60",
                 "restart")  # fmt: skip

    def running(self) -> bool:
        return self._pg("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def ready(self) -> bool:
        """The server accepts connections."""
        try:
            with self.connect(connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def destroy(self) -> None:
        """Stop the server (at once) and remove its folder; safe to call twice."""
        if self.data.exists() and (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # --- connecting ------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, schema: str, **params: str) -> str:
        """A store URL in a schema of this cluster, with extra URL parameters."""
        query = "&".join([f"schema={schema}", *(f"{k}={v}" for k, v in params.items())])
        return f"{self.dsn}?{query}"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A connection of the test's own (autocommit unless told), outside every store."""
        options = {"autocommit": True, "connect_timeout": 5, **kwargs}
        return psycopg.connect(self.dsn, **options)

    def drop_schema(self, schema: str) -> None:
        if not self.running():
            self.start()
        with self.connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def throwaway_cluster(settings: Mapping[str, str] | None = None) -> Iterator[Cluster]:
    """A started cluster, destroyed when the block ends (and at exit, should it not end)."""
    cluster = Cluster(settings)
    atexit.register(cluster.destroy)
    try:
        cluster.start()
        eventually(
            cluster.ready,
            timeout=30,
            what="the throwaway cluster to answer",
            explain=cluster.log_tail,
        )
        yield cluster
    finally:
        cluster.destroy()
        atexit.unregister(cluster.destroy)


@pytest.fixture(scope="module", name="cluster")
def cluster_fixture(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A throwaway cluster for the module, with its `CLUSTER_SETTINGS`."""
    settings = getattr(request.module, "CLUSTER_SETTINGS", None)
    with throwaway_cluster(settings) as started:
        yield started


@pytest.fixture(name="cluster_store_url")
def cluster_store_url_fixture(cluster: Cluster) -> Iterator[str]:
    """A fresh store URL in a schema of its own on the module's cluster; the cluster is running
    again at the end of every test (a test may leave it stopped)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield cluster.url(schema)
    if not cluster.running():
        cluster.start()
    eventually(
        cluster.ready, timeout=30, what="the cluster to answer again", explain=cluster.log_tail
    )
    cluster.drop_schema(schema)
