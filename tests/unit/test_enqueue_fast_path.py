"""The enqueue fast paths give what the general ones give: the plain binder what inspect's
`Signature.bind` gives (or its error), the JSON text carried in `NewJob` what the engines would
encode, and a job type's own options what `build_options` would make of them."""

from __future__ import annotations

import inspect
import itertools
import json
import math
from pathlib import Path
from typing import Any, Literal

import pytest

from offload import InvalidArgumentsError, Offload, PayloadTooLargeError
from offload.jobs._signature import Signature
from offload.store._codec import dumps


def f_plain(a: int, b: str = "x", c: float | None = None) -> None: ...
def f_untyped(a, b=1, *, c, d=2) -> None: ...  # type: ignore[no-untyped-def]
def f_posonly(a: int, /, b: int = 0, *, c: bool = False) -> None: ...
def f_literal(mode: Literal["a", "b"], n: list[int] | None = None) -> None: ...
def f_none() -> None: ...


SIGNATURES = [f_plain, f_untyped, f_posonly, f_literal, f_none]
VALUES: list[Any] = [1, "a", 2.5, None, True, [1, 2], {"k": 1}, (1,), 2**64, math.nan]
KEYS = ["a", "b", "c", "d", "mode", "n", "zz"]


def _calls() -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for n in range(4):
        for args in itertools.product(VALUES[:4], repeat=n):
            calls.append((args, {}))
            for key in KEYS:
                calls.append((args, {key: VALUES[(n + len(key)) % len(VALUES)]}))
            calls.append((args, {"b": "y", "c": 1.5}))
    for value in VALUES:
        calls.append(((value,), {}))
        calls.append(((1,), {"b": value}))
        calls.append(((), {"mode": value}))
        calls.append(((), {"a": 1, "c": value}))
    return calls


def _outcome(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], fast: bool) -> Any:
    sig = Signature(fn, fn.__name__)
    if not fast:
        sig._plain = False  # inspect's binder and the full check, as before the fast path
    try:
        return ("ok", json.dumps(sig.bind(args, kwargs)))
    except InvalidArgumentsError as exc:
        return ("error", str(exc), exc.argument)


@pytest.mark.parametrize("fn", SIGNATURES, ids=lambda f: f.__name__)
def test_plain_binder_agrees_with_inspect(fn: Any) -> None:
    for args, kwargs in _calls():
        slow = _outcome(fn, args, kwargs, fast=False)
        assert _outcome(fn, args, kwargs, fast=True) == slow, (fn.__name__, args, kwargs)


def test_plain_binder_keeps_parameter_order() -> None:
    sig = Signature(f_plain, "f_plain")
    assert list(sig.bind((), {"c": 1.0, "a": 1, "b": "y"})) == ["a", "b", "c"]
    assert list(inspect.signature(f_plain).bind(c=1.0, a=1, b="y").arguments) == ["a", "b", "c"]


@pytest.fixture
def app(tmp_path: Path) -> Offload:
    return Offload(f"sqlite:///{tmp_path / 'jobs.db'}", max_payload_bytes=2000)


def test_carried_json_is_what_the_engines_encode(app: Offload) -> None:
    @app.job()
    def send(user: int, payload: object = None) -> None: ...

    for payload in [None, "Zoë ✓", {"n": [1, 2.5, None, True], "t": (1, 2)}, 2**63 - 1, -0.0]:
        new = send.prepare(7, payload=payload).new
        assert new.args_json == dumps(new.args)
        assert new.args == json.loads(new.args_json)
        with_options = send.options(priority=3).prepare(7, payload=payload).new
        assert with_options.args_json == new.args_json


def test_size_limit_counts_utf8_bytes(app: Offload) -> None:
    @app.job()
    def send(text: str) -> None: ...

    send.prepare("x" * 1900)
    with pytest.raises(PayloadTooLargeError):
        send.prepare("é" * 1200)  # 1,200 characters, 2,400 bytes
    with pytest.raises(PayloadTooLargeError):
        send.options(priority=1).prepare("é" * 1200)


def test_own_options_match_the_general_path(app: Offload) -> None:
    @app.job(queue="mail", priority=5, max_attempts=3, slo=10, weight=2, tenant="t{user}")
    def send(user: int) -> None: ...

    plain = send.prepare(1).new
    general = send.options(queue="mail").prepare(1).new
    assert plain == general
    assert plain.tenant == "t1" and plain.stride == 0.5 and plain.slo == 10.0
    assert plain.meta == {} and plain.meta is not send.prepare(2).new.meta
