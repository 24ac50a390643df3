"""The systems under test, seen from the producer: reset, enqueue (single, bulk, one timed
job), count what is queued, and the worker commands with their configuration.

Each system is imported lazily, so that a driver process only needs the library it measures
(oban runs in a Python 3.12 venv of its own).
"""

from __future__ import annotations

import abc
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench._config import OBAN_PYTHON, PG_ADMIN, REDIS_PEERS, pg_url, sqlite_file

CPUS = os.cpu_count() or 2
BIN = Path(sys.executable).parent


def _bin(name: str) -> str:
    return str(BIN / name)


def recreate_database(name: str) -> None:
    """Drop and create a database of the bench's own (never one it did not make)."""
    import psycopg

    assert name.startswith("bench_"), name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


class System(abc.ABC):
    """A job system as the harness drives it; each peer implements the abstract methods."""

    name = ""
    backend = ""  # sqlite, postgres or redis
    python = sys.executable
    bulk_api = ""
    worker_config = ""
    processes = CPUS

    def reset(self) -> None:
        """Empty the system's store (a fresh database, file or Redis db); nothing by default."""
        return None

    @abc.abstractmethod
    def single(self, n: int) -> None:
        """Enqueue jobs 0..n-1, one call each."""

    @abc.abstractmethod
    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        """Enqueue jobs 0..n-1 of `kind` (`noop`, or `io`: one Redis round trip) with the
        system's bulk API, `chunk` jobs per call."""

    @abc.abstractmethod
    def send(self, i: int) -> None:
        """Enqueue job i carrying the time just before the enqueue call (for pickup latency)."""

    @abc.abstractmethod
    def queued(self) -> int:
        """How many jobs the store holds now."""

    @abc.abstractmethod
    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        """The worker commands to start (each in a process group of its own) and their env."""

    def chains(self, count: int, length: int) -> None:
        """Enqueue `count` chains of `length` noop steps (jobs `c × length + s`), for the
        systems that have chains (offload, celery)."""
        raise NotImplementedError(f"{self.name}: the bench makes no chains on it")

    def close(self) -> None:
        """Release what the system holds; nothing by default."""
        return None


class _Async(System):
    """A system whose producer API is async: every scenario runs inside one event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


# --- offload ------------------------------------------------------------------------------
class Offload(System):
    bulk_api = "app.enqueue_many(job.prepare(...) ...), one transaction per call"
    concurrency = 32

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.name = f"offload-{backend}"
        self.db = "bench_offload"
        if backend == "sqlite":
            self.path = sqlite_file("offload")
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = pg_url(self.db)
        self.worker_config = (
            f"`offload worker --processes {self.processes} --concurrency {self.concurrency}` "
            "(a supervisor and 2 worker processes, threads for sync jobs; claims ahead up to "
            "4 × 32 jobs while jobs are short; each turn acknowledges the finished jobs and "
            "claims the next in one transaction; maintenance on)"
        )
        self._app: Any = None

    @property
    def app(self) -> Any:
        if self._app is None:
            from bench.apps import offload_app

            app = offload_app.app
            app.close()
            app.config = replace(app.config, url=self.url)
            self._app = app
        return self._app

    def reset(self) -> None:
        if self._app is not None:
            self._app.close()
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        else:
            recreate_database(self.db)
        self.app.store  # noqa: B018 - opens and migrates

    def job(self, kind: str = "noop") -> Any:
        return self.app.jobs[kind]

    def single(self, n: int) -> None:
        noop = self.job()
        for i in range(n):
            noop.enqueue(i)

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        job = self.job(kind)
        for start in range(0, n, chunk):
            self.app.enqueue_many([job.prepare(i) for i in range(start, min(start + chunk, n))])

    def send(self, i: int) -> None:
        self.job().enqueue(i, time.time())

    def chains(self, count: int, length: int) -> None:
        """`count` chains (`app.chain`) of `length` noop steps: jobs `c × length + s`."""
        noop = self.job()
        for c in range(count):
            self.app.chain(*(noop.prepare(c * length + s) for s in range(length))).enqueue()

    def run_span(self, job_id: int) -> tuple[str, float]:
        """(state, finished_at − attempted_at) of one job, by the store's clock."""
        row = self._query(
            "SELECT state, attempted_at, finished_at FROM {t} WHERE id = {p}", (job_id,)
        )
        if row is None or row[1] is None or row[2] is None:
            return (row[0] if row else "missing"), 0.0
        return str(row[0]), float(row[2]) - float(row[1])

    def queued(self) -> int:
        return sum(c.count for c in self.app.store.job_counts())

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if self.backend == "sqlite":
            import sqlite3

            with sqlite3.connect(self.path) as conn:
                return conn.execute(sql.format(t="offload_jobs", p="?"), params).fetchone()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql.format(t="offload.offload_jobs", p="%s"), params).fetchone()

    def completed_span(self, since: float = 0.0) -> tuple[int, float, float]:
        """(jobs completed since `since`, their first attempt, their last finish): a drain
        measured at the ack. Served by the index on (state, finished_at)."""
        row = self._query(
            "SELECT count(*), min(attempted_at), max(finished_at) FROM {t} "
            "WHERE state = 'completed' AND finished_at >= {p}",
            (since,),
        )
        return int(row[0]), float(row[1] or 0), float(row[2] or 0)

    def unfinished(self) -> int:
        """Jobs still available or running (cheap: two partial indexes)."""
        row = self._query(
            "SELECT (SELECT count(*) FROM {t} WHERE state = 'available') + "
            "(SELECT count(*) FROM {t} WHERE state = 'running')"
        )
        return int(row[0])

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        procs = os.environ.get("BENCH_OFFLOAD_P", str(self.processes))
        conc = os.environ.get("BENCH_OFFLOAD_C", str(self.concurrency))
        argv = [
            sys.executable,
            "-m",
            "offload",
            "worker",
            "bench.apps.offload_app:app",
            "--url",
            self.url,
            "--processes",
            procs,
            "--concurrency",
            conc,
            "--poll-interval",
            "1",
        ]
        return [(argv, {})]

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


# --- Redis peers --------------------------------------------------------------------------
def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_PEERS).flushdb()


class Celery(System):
    name, backend = "celery", "redis"
    bulk_api = "none: apply_async per job on one shared producer connection"
    worker_config = (
        "2 × `celery worker -P solo --without-gossip --without-mingle --without-heartbeat`, "
        "prefetch multiplier 64, results ignored (prefork -c 2 ran ~1.0k jobs/s, with -O fair "
        "~0.3k)"
    )

    def __init__(self) -> None:
        from bench.apps import celery_app

        self.mod = celery_app

    def reset(self) -> None:
        _flush_redis()

    def single(self, n: int) -> None:
        for i in range(n):
            self.mod.noop.delay(i)

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        task = getattr(self.mod, kind)
        with self.mod.app.producer_or_acquire() as producer:
            for i in range(n):
                task.apply_async((i,), producer=producer)

    def send(self, i: int) -> None:
        self.mod.noop.delay(i, time.time())

    def chains(self, count: int, length: int) -> None:
        """`count` canvas chains of `length` immutable noop signatures (no result backend:
        each link travels in its message)."""
        from celery import chain

        for c in range(count):
            chain(*(self.mod.noop.si(c * length + s) for s in range(length))).apply_async()

    def queued(self) -> int:
        import redis

        return int(redis.Redis.from_url(REDIS_PEERS).llen("celery"))

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        argv = [sys.executable, "-m", "celery", "-A", "bench.apps.celery_app", "worker"]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]
        mode = os.environ.get("BENCH_CELERY", "-P solo")
        if "solo" in mode:
            return [([*argv, *mode.split(), "-n", f"w{k}@%h"], {}) for k in range(CPUS)]
        return [([*argv, *mode.split()], {})]


class RQ(System):
    name, backend = "rq", "redis"
    bulk_api = "Queue.enqueue_many(Queue.prepare_data(...) ...) (one Redis pipeline per call)"
    worker_config = (
        "2 × `rq worker -w rq.worker.SimpleWorker` (no fork per job; the default forking "
        "Worker runs ~150 jobs/s); result_ttl=0"
    )

    def __init__(self) -> None:
        import redis
        from rq import Queue

        from bench.apps import rq_app

        self.Queue = Queue
        self.mod = rq_app
        self.fn = rq_app.noop
        self.q = Queue("default", connection=redis.Redis.from_url(REDIS_PEERS))

    def reset(self) -> None:
        _flush_redis()

    def single(self, n: int) -> None:
        for i in range(n):
            self.q.enqueue(self.fn, i, result_ttl=0)

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        fn = getattr(self.mod, kind)
        for start in range(0, n, chunk):
            self.q.enqueue_many(
                [
                    self.Queue.prepare_data(fn, (i,), result_ttl=0)
                    for i in range(start, min(start + chunk, n))
                ]
            )

    def send(self, i: int) -> None:
        self.q.enqueue(self.fn, i, time.time(), result_ttl=0)

    def queued(self) -> int:
        return int(self.q.count)

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        argv = [_bin("rq"), "worker", "-w", "rq.worker.SimpleWorker", "-u", REDIS_PEERS, "-q"]
        return [([*argv, "default"], {}) for _ in range(CPUS)]


class Dramatiq(System):
    name, backend = "dramatiq", "redis"
    bulk_api = "none: actor.send per job"
    worker_config = "`dramatiq -p 2 -t 8` (2 processes × 8 threads; the default threads)"

    def __init__(self) -> None:
        from bench.apps import dramatiq_app

        self.mod = dramatiq_app

    def reset(self) -> None:
        _flush_redis()

    def single(self, n: int) -> None:
        for i in range(n):
            self.mod.noop.send(i)

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        actor = getattr(self.mod, kind)
        for i in range(n):
            actor.send(i)

    def send(self, i: int) -> None:
        self.mod.noop.send(i, time.time())

    def queued(self) -> int:
        import redis

        return int(redis.Redis.from_url(REDIS_PEERS).hlen("dramatiq:default.msgs"))

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        argv = [_bin("dramatiq"), "bench.apps.dramatiq_app", "-p", str(CPUS), "-t", "8"]
        return [(argv, {})]


class Huey(System):
    name, backend = "huey", "redis"
    bulk_api = "none: task call per job"
    worker_config = (
        "`huey_consumer -k process -w 4 -C -n` (4 worker processes, blocking BRPOP reads); "
        "results off"
    )

    def __init__(self) -> None:
        from bench.apps import huey_app

        self.mod = huey_app

    def reset(self) -> None:
        _flush_redis()

    def single(self, n: int) -> None:
        for i in range(n):
            self.mod.noop(i)

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        task = getattr(self.mod, kind)
        for i in range(n):
            task(i)

    def send(self, i: int) -> None:
        self.mod.noop(i, time.time())

    def queued(self) -> int:
        return int(self.mod.huey.pending_count())

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        argv = [_bin("huey_consumer"), "bench.apps.huey_app.huey", "-k", "process", "-w", "4"]
        return [([*argv, "-C", "-n", "-q"], {})]


class Arq(_Async):
    name, backend = "arq", "redis"
    bulk_api = "none: enqueue_job per job, 1,000 awaited together (asyncio.gather)"
    worker_config = "2 × `arq WorkerSettings` (max_jobs=50, poll_delay=0.05 s, keep_result=0)"

    def __init__(self) -> None:
        super().__init__()
        from arq import create_pool

        from bench.apps import arq_app

        self.pool = self.run(create_pool(arq_app.REDIS))

    def reset(self) -> None:
        _flush_redis()

    def single(self, n: int) -> None:
        async def go() -> None:
            for i in range(n):
                await self.pool.enqueue_job("noop", i)

        self.run(go())

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        async def go() -> None:
            for start in range(0, n, 1000):
                end = min(start + 1000, n)
                await asyncio.gather(*(self.pool.enqueue_job(kind, i) for i in range(start, end)))

        self.run(go())

    def send(self, i: int) -> None:
        async def go() -> None:
            await self.pool.enqueue_job("noop", i, time.time())

        self.run(go())

    def queued(self) -> int:
        return int(self.run(self.pool.zcard("arq:queue")))

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        return [([_bin("arq"), "bench.apps.arq_app.WorkerSettings"], {}) for _ in range(CPUS)]

    def close(self) -> None:
        self.run(self.pool.aclose())
        super().close()


# --- PostgreSQL peers ---------------------------------------------------------------------
class Procrastinate(_Async):
    name, backend = "procrastinate", "postgres"
    db = "bench_procrastinate"
    bulk_api = "task.batch_defer_async(*kwargs)"
    worker_config = "2 × `procrastinate worker --concurrency 20` (LISTEN/NOTIFY on)"

    def __init__(self) -> None:
        super().__init__()
        self.url = pg_url(self.db)
        os.environ["BENCH_PG_URL"] = self.url
        from bench.apps import procrastinate_app

        self.mod = procrastinate_app
        self.opened = False

    def reset(self) -> None:
        if self.opened:
            self.run(self.mod.app.close_async())
        recreate_database(self.db)
        self.run(self.mod.app.open_async())
        self.opened = True
        self.run(self.mod.app.schema_manager.apply_schema_async())

    def single(self, n: int) -> None:
        async def go() -> None:
            for i in range(n):
                await self.mod.noop.defer_async(i=i)

        self.run(go())

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        task = getattr(self.mod, kind)

        async def go() -> None:
            for start in range(0, n, chunk):
                end = min(start + chunk, n)
                await task.batch_defer_async(*({"i": i} for i in range(start, end)))

        self.run(go())

    def send(self, i: int) -> None:
        async def go() -> None:
            await self.mod.noop.defer_async(i=i, t=time.time())

        self.run(go())

    def queued(self) -> int:
        return pg_count(self.url, "SELECT count(*) FROM procrastinate_jobs")

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        argv = [_bin("procrastinate"), "--app=bench.apps.procrastinate_app.app", "worker"]
        argv += ["--concurrency", "20"]
        return [(argv, {"BENCH_PG_URL": self.url}) for _ in range(CPUS)]

    def close(self) -> None:
        if self.opened:
            self.run(self.mod.app.close_async())
        super().close()


class PgQueuer(_Async):
    name, backend = "pgqueuer", "postgres"
    db = "bench_pgqueuer"
    bulk_api = "Queries.enqueue([entrypoints], [payloads], [priorities]) (unnest arrays)"
    worker_config = (
        "2 × `PgQueuer.run(batch_size=32)` processes (what `pgq run` does; asyncpg; batch 32 "
        "like offload's claim batch, the default 10 ran ~1.5k jobs/s)"
    )

    def __init__(self) -> None:
        super().__init__()
        self.url = pg_url(self.db)
        self.conn: Any = None
        self.q: Any = None

    def reset(self) -> None:
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        if self.conn is not None:
            self.run(self.conn.close())
        recreate_database(self.db)
        self.conn = self.run(asyncpg.connect(self.url))
        self.q = Queries(AsyncpgDriver(self.conn))
        self.run(self.q.install())

    @staticmethod
    def payload(i: int, t: float | None = None) -> bytes:
        return json.dumps({"i": i} if t is None else {"i": i, "t": t}).encode()

    def single(self, n: int) -> None:
        async def go() -> None:
            for i in range(n):
                await self.q.enqueue("noop", self.payload(i), 0)

        self.run(go())

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        async def go() -> None:
            for start in range(0, n, chunk):
                rng = range(start, min(start + chunk, n))
                await self.q.enqueue(
                    [kind] * len(rng), [self.payload(i) for i in rng], [0] * len(rng)
                )

        self.run(go())

    def send(self, i: int) -> None:
        async def go() -> None:
            await self.q.enqueue("noop", self.payload(i, time.time()), 0)

        self.run(go())

    def queued(self) -> int:
        return pg_count(self.url, "SELECT count(*) FROM pgqueuer")

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        argv = [sys.executable, "-m", "bench.apps.pgqueuer_app"]
        env = {"BENCH_PG_URL": self.url, "BENCH_PGQ_BATCH": os.environ.get("BENCH_PGQ_BATCH", "32")}
        return [(argv, env) for _ in range(CPUS)]

    def close(self) -> None:
        if self.conn is not None:
            self.run(self.conn.close())
        super().close()


class Oban(_Async):
    name, backend = "oban", "postgres"
    python = OBAN_PYTHON
    db = "bench_oban"
    limit = 20
    bulk_api = "Oban.enqueue_many([Worker.new(...) ...])"
    worker_config = "2 × `Oban(queues={'default': 20})` processes (Python 3.12; oban needs >= 3.12)"

    def __init__(self) -> None:
        super().__init__()
        self.url = pg_url(self.db)
        os.environ["BENCH_PG_URL"] = self.url
        from bench.apps import oban_app

        self.mod = oban_app
        self.pool: Any = None
        self.oban: Any = None

    def reset(self) -> None:
        from oban import Oban as ObanClient
        from oban.schema import install

        if self.pool is not None:
            self.run(self.pool.close())
        recreate_database(self.db)
        self.pool = self.run(ObanClient.create_pool(self.url, min_size=1, max_size=4))
        self.run(install(self.pool))
        self.oban = ObanClient(pool=self.pool)

    def single(self, n: int) -> None:
        async def go() -> None:
            for i in range(n):
                await self.oban.enqueue(self.mod.Noop.new({"i": i}))

        self.run(go())

    def bulk(self, n: int, chunk: int, kind: str = "noop") -> None:
        worker: Any = self.mod.Io if kind == "io" else self.mod.Noop

        async def go() -> None:
            for start in range(0, n, chunk):
                rng = range(start, min(start + chunk, n))
                await self.oban.enqueue_many([worker.new({"i": i}) for i in rng])

        self.run(go())

    def send(self, i: int) -> None:
        async def go() -> None:
            await self.oban.enqueue(self.mod.Noop.new({"i": i, "t": time.time()}))

        self.run(go())

    def queued(self) -> int:
        return pg_count(self.url, "SELECT count(*) FROM oban_jobs")

    def workers(self) -> list[tuple[list[str], dict[str, str]]]:
        env = {"BENCH_PG_URL": self.url, "BENCH_OBAN_LIMIT": str(self.limit)}
        return [([self.python, "-m", "bench.apps.oban_app"], env) for _ in range(CPUS)]

    def close(self) -> None:
        if self.pool is not None:
            self.run(self.pool.close())
        super().close()


FACTORIES: dict[str, Callable[[], System]] = {
    "offload-sqlite": lambda: Offload("sqlite"),
    "offload-postgres": lambda: Offload("postgres"),
    "celery": Celery,
    "rq": RQ,
    "dramatiq": Dramatiq,
    "huey": Huey,
    "arq": Arq,
    "procrastinate": Procrastinate,
    "pgqueuer": PgQueuer,
    "oban": Oban,
}
BACKENDS = {
    "offload-sqlite": "sqlite",
    "offload-postgres": "postgres",
    "celery": "redis",
    "rq": "redis",
    "dramatiq": "redis",
    "huey": "redis",
    "arq": "redis",
    "procrastinate": "postgres",
    "pgqueuer": "postgres",
    "oban": "postgres",
}
PEERS = [name for name in FACTORIES if not name.startswith("offload")]


def python_for(name: str) -> str:
    return OBAN_PYTHON if name == "oban" else sys.executable
