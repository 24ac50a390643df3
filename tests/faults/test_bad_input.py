"""Bad input at the door (catalogue F3, F4, F6), on both engines, through the library and the
HTTP API, with the ledger checker over what a real worker then ran.

- F3 oversized payload: arguments of limit - 1, limit and limit + 1 bytes of JSON; up to the
  limit they are stored and run, past it `PayloadTooLargeError` (HTTP 413) before the store is
  touched.
- F4 hostile arguments: a set, bytes, a datetime, a Decimal, an object, NaN, infinity, integers
  past 64 bits, 10,000 levels of nesting, a string past the limit, a NUL, a lone surrogate: each
  refused at enqueue with a typed error and its path, never a 500 over HTTP; what is accepted
  comes back identical from the store and from a worker (a Hypothesis property checks both).
- F6 hostile names: job types and queues named with SQL, quotes, a backslash, %, emoji are
  stored and matched literally; names with a control character (`"default\\n"`), a lone
  surrogate, white space at an end or 64 KB are refused; the API takes names and filters of a
  strict pattern only; the schema is intact afterwards.

A refused enqueue is a `fail` line in the ledger; it must never start (`unexpected`).
"""

from __future__ import annotations

import json
import math
import signal
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from offload import (
    ConfigurationError,
    InvalidArgumentsError,
    InvalidTextError,
    Offload,
    PayloadTooLargeError,
)
from offload._text import name_problem
from offload.server import ExternalKind, create_app
from offload.store._contract import JobFilter
from tests.integration._harness import Procs, wait_until

from ._ledger import Ledger, check, record_figures
from .inputapp import ODD_NAMES, ODD_QUEUES, make_app

APP = "tests.faults.inputapp:app"
BASE = "http://127.0.0.1:8750"
LIMIT = 1_000_000  # the default max_payload_bytes
COMPACT = {"separators": (",", ":"), "ensure_ascii": False}


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The bad-input app on a fresh, migrated store (it replaces the fault app here)."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


class Spy:
    """Counts the store calls that an enqueue makes first (the rules read of admission) and
    last (the insert), so that a test sees a refusal come before either."""

    def __init__(self, app: Offload, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        store = app.store
        for name in ("rule_list", "job_insert_many"):
            real = getattr(store, name)
            monkeypatch.setattr(store, name, self._wrap(name, real))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return real(*args, **kwargs)

        return spy

    def inserts(self) -> int:
        return self.calls.count("job_insert_many")


@pytest.fixture
def client(app: Offload) -> Iterator[TestClient]:
    kinds = (ExternalKind("js.any", "elsewhere"),)
    with TestClient(create_app(app, external_kinds=kinds), base_url=BASE) as http:
        yield http


def post(client: TestClient, body: Any, ledger: Ledger | None = None, key: str = "") -> Any:
    """POST /jobs (a JSON text as it is, or a value to encode), noted in the ledger."""
    text = body if isinstance(body, str) else json.dumps(body)
    if ledger is not None:
        ledger.note("invoke", key)
    r = client.post("/jobs", content=text.encode(), headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text
    if ledger is not None:
        if r.status_code == 202:
            ledger.note("ok", key, r.json()["id"])
        else:
            ledger.note("fail", key)
    return r


def refused(ledger: Ledger, app: Offload, key: str, error: type[Exception], **kwargs: Any) -> Any:
    """Enqueue `echo` through the ledger, expecting `error`; the error."""
    with pytest.raises(error) as caught:
        ledger.enqueue(app, "echo", key, **kwargs)
    return caught.value


def run_worker(procs: Procs, ledger: Ledger, keys: Iterable[str], queues: str = "default") -> None:
    """A real worker runs until every key has ended, then stops on SIGTERM."""
    wanted = set(keys)
    worker = procs.worker(concurrency=4, app=APP, queues=queues)
    wait_until(lambda: wanted <= set(ledger.keys("end")), what=f"{len(wanted)} jobs to end")
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0


def same(a: Any, b: Any) -> bool:
    """JSON equality that also keeps types: 1 is not 1.0 nor True (0.0 and -0.0 are equal:
    PostgreSQL keeps no negative zero)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


# --- F3 oversized payload ---------------------------------------------------------------------
def sized(key: str, size: int, wide: bool = False) -> dict[str, Any]:
    """`echo` arguments whose compact JSON is exactly `size` bytes (with `wide`, 1,000
    two-byte characters among them, so that bytes and characters differ)."""
    room = size - len(json.dumps({"key": key, "value": ""}, **COMPACT).encode())
    value = "é" * 1000 + "x" * (room - 2000) if wide else "x" * room
    args = {"key": key, "value": value}
    assert len(json.dumps(args, **COMPACT).encode()) == size
    return args


def test_f3_payloads_up_to_the_limit_run_and_past_it_are_refused_before_the_store(
    app: Offload,
    client: TestClient,
    procs: Procs,
    ledger: Ledger,
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the library: a fresh app never opens its store for a refused payload, single or bulk
    fresh = make_app(app.config.url)
    echo = fresh.job_type("echo")
    for args in (sized("lib-over", LIMIT + 1), sized("lib-over", LIMIT + 1, wide=True)):
        with pytest.raises(PayloadTooLargeError, match="over the limit of 1,000,000") as err:
            fresh.enqueue("echo", **args)
        assert (err.value.argument, err.value.path) == ("value", "args.value")
        with pytest.raises(PayloadTooLargeError):
            fresh.enqueue_many([echo.prepare(key="small"), echo.prepare(**args)])
    assert fresh._store is None
    fresh.close()

    for key, size in [("lib-under", LIMIT - 1), ("lib-at", LIMIT)]:
        args = sized(key, size)
        ledger.enqueue(app, "echo", key, value=args["value"])
    for key, wide in [("lib-over", False), ("lib-over-wide", True)]:
        args = sized(key, LIMIT + 1, wide)
        refused(ledger, app, key, PayloadTooLargeError, value=args["value"])

    # HTTP: 202 up to the limit, 413 past it, with nothing asked of the store
    spy = Spy(app, monkeypatch)
    for key, size in [("http-under", LIMIT - 1), ("http-at", LIMIT)]:
        r = post(client, {"kind": "echo", "args": sized(key, size)}, ledger, key)
        assert r.status_code == 202, r.text
    inserts = spy.inserts()
    for key, wide in [("http-over", False), ("http-over-wide", True)]:
        body = {"kind": "echo", "args": sized(key, LIMIT + 1, wide)}
        r = post(client, body, ledger, key)
        assert r.status_code == 413 and r.json()["type"] == "/problems/payload-too-large"
        assert r.json()["path"] == "args.value"
        r = post(client, {"kind": "js.any", "args": sized(key, LIMIT + 1, wide)})
        assert r.status_code == 413, r.text
    assert spy.inserts() == inserts

    accepted = ["lib-under", "lib-at", "http-under", "http-at"]
    run_worker(procs, ledger, accepted)
    verdict = check(ledger, app, kinds=["echo"])
    verdict.assert_holds()
    assert verdict.figures()["jobs"] == len(accepted)
    assert not set(ledger.keys("start")) - set(accepted)
    for record in app.store.job_list(JobFilter(kind="echo")):
        assert record.state == "completed" and record.result == record.args["value"]
    record_figures("F3 oversized payload", engine, verdict, refused=len(ledger.keys("fail")))


# --- F4 hostile arguments ---------------------------------------------------------------------
def nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


HOSTILE: list[tuple[str, Any, type[Exception], str, str]] = [
    ("set", {1, 2}, InvalidArgumentsError, "args.value", "set"),
    ("bytes", b"\x00\xff", InvalidArgumentsError, "args.value", "bytes"),
    ("datetime", datetime(2030, 1, 1, tzinfo=UTC), InvalidArgumentsError, "args.value", "datetime"),
    ("decimal", Decimal("1.10"), InvalidArgumentsError, "args.value", "Decimal"),
    ("object", object(), InvalidArgumentsError, "args.value", "object"),
    ("nan", math.nan, InvalidArgumentsError, "args.value", "nan"),
    ("infinity", [1, {"x": -math.inf}], InvalidArgumentsError, "args.value[1].x", "inf"),
    ("int-2^63", {"n": 2**63}, InvalidArgumentsError, "args.value.n", "64 bits"),
    ("int-below", -(2**63) - 1, InvalidArgumentsError, "args.value", "64 bits"),
    ("nesting", nested(10_000), InvalidArgumentsError, "args.value" + "[0]" * 33, "deeper"),
    ("large-string", "x" * 2_000_000, PayloadTooLargeError, "args.value", "over the limit"),
    ("nul", {"a": ["ok", "x\x00y"]}, InvalidTextError, "args.value.a[1]", "NUL"),
    ("surrogate", {"caf\udce9": 1}, InvalidTextError, "args.value", "lone surrogate"),
]
GOOD: dict[str, Any] = {
    "int-max": 2**63 - 1,
    "int-min": -(2**63),
    "float-1e16": 1e16,
    "float-big": 1.2345678901234567e19,
    "float-max": 1.7976931348623157e308,
    "float-tiny": 5e-324,
    "float-small": -2.5e-5,
    "text": "é🎉\u2028\x01\ufffd",
    "escapes-as-text": "\\u0000 \\ud800 e+1",
    "nesting-32": nested(31, {"deep": True}),
    "shapes": {"": [], "e+": {}, "list": [True, False, None, 0, 1, 0.0, 1.0, -0.5]},
}


def test_f4_hostile_arguments_are_refused_with_their_path_and_the_rest_round_trip(
    app: Offload,
    client: TestClient,
    procs: Procs,
    ledger: Ledger,
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value, error, path, says in HOSTILE:
        caught = refused(ledger, app, f"hostile-{name}", error, value=value)
        assert caught.path == path, (name, caught.path)
        assert says in str(caught), (name, str(caught))
    for name, value in GOOD.items():
        ledger.enqueue(app, "echo", f"good-{name}", value=value)

    spy = Spy(app, monkeypatch)
    head = '{"kind":"echo","args":{"key":"http","value":'
    bodies = {
        "nan": (head + "NaN}}", 400),
        "infinity": (head + "-Infinity}}", 400),
        "float-past-double": (head + "1e400}}", 400),
        "int-2^64": (head + str(2**64) + "}}", 422),
        "nesting": (head + "[" * 10_000 + "]" * 10_000 + "}}", 400),
        "nul": (head + '"a\\u0000"}}', 422),
        "surrogate": (head + '{"\\udce9":1}}}', 422),
        "large-string": (head + '"' + "x" * 1_100_000 + '"}}', 413),
        "args-not-an-object": ('{"kind":"js.any","args":"x"}', 422),
        "external-nul": ('{"kind":"js.any","args":{"a":["\\u0000"]}}', 422),
    }
    for name, (text, status) in bodies.items():
        r = post(client, text, ledger, f"http-{name}")
        assert r.status_code == status, (name, r.text[:300])
    assert spy.inserts() == 0

    run_worker(procs, ledger, [f"good-{name}" for name in GOOD])
    verdict = check(ledger, app, kinds=["echo"])
    verdict.assert_holds()
    assert verdict.figures()["jobs"] == len(GOOD)
    for record in app.store.job_list(JobFilter(kind="echo")):
        name = record.args["key"].removeprefix("good-")
        assert record.state == "completed", (name, record.errors)
        assert same(record.args["value"], GOOD[name]), (name, record.args["value"])
        assert same(record.result, GOOD[name]), (name, record.result)  # as the worker saw it
    record_figures("F4 hostile arguments", engine, verdict, refused=len(ledger.keys("fail")))


TEXT = st.text(st.characters(exclude_categories=()), max_size=6)  # NUL and surrogates too
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats()
    | TEXT
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)


def refusable(value: Any) -> bool:
    """The model: what enqueue must refuse (no other value of JSONISH is refusable)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return not -(2**63) <= value < 2**63
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):
        return any(refusable(v) for v in value)
    return any(refusable(k) or refusable(v) for k, v in value.items())


def test_f4_property_any_json_ish_value_is_refused_or_comes_back_identical(
    app: Offload, client: TestClient
) -> None:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(value=JSONISH)
    def prop(value: Any) -> None:
        try:
            job = app.enqueue("echo", key="prop", value=value)
        except InvalidArgumentsError as exc:
            assert refusable(value), exc
            assert exc.path is not None and exc.path.startswith("args.value"), exc.path
        else:
            assert not refusable(value)
            stored = app.store.job_get(job.id)
            assert stored is not None and same(stored.args["value"], value)
            app.store.job_discard(job.id)

        text = json.dumps({"kind": "js.any", "args": {"v": value}})  # NaN as JSON can't say
        r = client.post("/jobs", content=text, headers={"content-type": "application/json"})
        assert r.status_code in (202, 400, 422), r.text
        assert (r.status_code == 202) == (not refusable(value)), r.text
        if r.status_code == 202:
            assert same(client.get(f"/jobs/{r.json()['id']}").json()["args"]["v"], value)

    prop()


# --- F6 hostile names -------------------------------------------------------------------------
REFUSED_NAMES = [
    "default\n",
    "default\r",
    "\tdefault",
    " default",
    "default ",
    "",
    "de\x00fault",
    "de\x7ffault",
    "caf\udce9",
    "x" * 65_536,
]


def _tables(app: Offload) -> tuple[list[str], str]:
    """The store's tables and its integrity verdict, read beside offload."""
    store = app.store
    if store.engine == "sqlite":
        with sqlite3.connect(urlparse(store.url).path) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return names, ok
    import psycopg

    parts = urlparse(store.url)
    schema = parse_qs(parts.query)["schema"][0]
    with psycopg.connect(parts._replace(query="").geturl()) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
        ).fetchall()
    return [r[0] for r in rows], "ok"


def test_f6_hostile_names_are_stored_literally_or_refused_and_the_schema_holds(
    app: Offload,
    client: TestClient,
    procs: Procs,
    ledger: Ledger,
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = _tables(app)
    assert before[1] == "ok" and before[0]

    # the library: refused names, as a job type's and as a queue, before any store is opened
    fresh = Offload(app.config.url)
    for i, name in enumerate(REFUSED_NAMES):
        if name:  # no name at all means the function's own
            with pytest.raises(ConfigurationError, match="name"):
                fresh.job(lambda: None, name=name)
        with pytest.raises(ConfigurationError, match="queue"):
            fresh.job(lambda: None, name=f"ok{i}", queue=name)
    with pytest.raises(ConfigurationError, match="queue"):
        app.call("echo", queue="default\n").enqueue(key="never")
    assert fresh._store is None

    # odd names are stored literally and matched as whole strings
    for name in ODD_NAMES:
        ledger.enqueue(app, name, f"odd-{ODD_NAMES.index(name)}")
    decoy = app.call("echo", queue="100X doneY").enqueue(key="decoy")
    for name in ODD_NAMES:
        [by_queue] = app.store.job_list(JobFilter(queue=name))
        [by_kind] = app.store.job_list(JobFilter(kind=name))
        assert by_queue.id == by_kind.id and (by_kind.kind, by_kind.queue) == (name, name)
    app.store.job_cancel(decoy.id)

    # HTTP: names and filters of the API's pattern only, whole strings; 4xx, nothing stored
    spy = Spy(app, monkeypatch)
    for name in [*ODD_NAMES[:5], "default\n", "echo\n"]:
        for body in ({"kind": name, "args": {}}, {"kind": "echo", "args": {}, "queue": name}):
            r = post(client, body)
            assert r.status_code == 422, (name, r.text)
    assert spy.inserts() == 0
    for query in [
        *(f"queue={quote(n)}" for n in ODD_NAMES[:5]),
        "queue=default%0A",
        "kind=echo%0A",
        "order=" + quote("created_at; SELECT pg_sleep(5)"),
        "sort=id",
        "limit=" + quote("1; DROP TABLE jobs"),
        "state=" + quote("available' OR '1'='1"),
        "before=" + quote("1 OR 1=1"),
    ]:
        r = client.get(f"/jobs?{query}")
        assert r.status_code == 400, (query, r.text)
    r = client.post("/worker/fetch", json={"worker": "w1\n", "queues": ["default"]})
    assert r.status_code == 422, r.text
    r = client.post("/worker/fetch", json={"worker": "w1", "queues": ["default\n"]})
    assert r.status_code == 422, r.text

    run_worker(procs, ledger, [f"odd-{i}" for i in range(len(ODD_NAMES))], ODD_QUEUES)
    verdict = check(ledger, app, kinds=ODD_NAMES)
    verdict.assert_holds()
    assert verdict.figures()["jobs"] == len(ODD_NAMES)
    assert _tables(app) == before
    record_figures("F6 hostile names", engine, verdict, refused=len(ledger.keys("fail")))


def test_f6_property_a_queue_name_is_refused_or_matched_as_a_whole(app: Offload) -> None:
    @settings(max_examples=60, deadline=None, database=None)
    @given(name=st.text(st.characters(exclude_categories=()), max_size=110))
    def prop(name: str) -> None:
        call = app.call("echo", queue=name)
        if name_problem(name, 100) is not None:
            with pytest.raises(ConfigurationError):
                call.enqueue(key="prop")
            return
        job = call.enqueue(key="prop")
        assert [r.id for r in app.store.job_list(JobFilter(queue=name))] == [job.id]
        assert job.refresh().record.queue == name
        app.store.job_discard(job.id)

    prop()
