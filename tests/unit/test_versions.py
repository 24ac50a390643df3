"""Argument versions (offload/jobs/_versions.py): `version=` and `upgrade=` are checked when a job
type is declared, jobs are stamped with the version at enqueue, and upgrade chains run step by
step, naming the step that fails."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from offload import ConfigurationError, Offload, UpgradeError
from offload.jobs._versions import DEFAULT_GRACE, Versions, versions_of
from offload.store._versions import WAIT_META
from offload.testing import drain


@pytest.fixture
def app(tmp_path: Path) -> Offload:
    return Offload(f"sqlite:///{tmp_path / 'jobs.db'}")


def _same(args: dict[str, Any]) -> dict[str, Any]:
    return args


@pytest.mark.parametrize(
    ("version", "upgrade", "message"),
    [
        (0, None, "version must be at least 1, got 0"),
        (-2, None, "version must be at least 1"),
        (True, None, "version must be a whole number"),
        ("2", None, "version must be a whole number"),
        (2.0, None, "version must be a whole number"),
        (
            2,
            None,
            "upgrade[2] is missing (a function that turns version 1 arguments into version 2",
        ),
        (3, {2: _same}, "upgrade[3] is missing"),
        (4, {2: _same, 4: _same}, "upgrade[3] is missing"),
        (2, {2: "v1_to_v2"}, "upgrade[2] must be a function that takes the version 1 arguments"),
        (2, [_same], "upgrade must be a dict of version: function"),
        (2, {2: _same, 3: _same}, "upgrade[3] is no step of version=2"),
        (2, {1: _same, 2: _same}, "upgrade[1] is no step of version=2"),
        (1, {2: _same}, "upgrade[2] needs version=2 or more: without version= a job type"),
        (2, {"2": _same}, "a key of upgrade ('2') must be a whole number"),
    ],
)
def test_declarations_are_checked(app: Offload, version: Any, upgrade: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        app.job(name="work", version=version, upgrade=upgrade)(lambda: None)
    assert "work" not in app.jobs


def test_a_bad_grace_is_refused(app: Offload, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="version_grace"):
        app.job(name="g", version_grace=-1)(lambda: None)
    with pytest.raises(ConfigurationError, match="version_grace"):
        Offload(f"sqlite:///{tmp_path / 'other.db'}", version_grace=-5)


def test_versions_belong_to_the_job_type_not_to_a_call(app: Offload) -> None:
    @app.job(version=2, upgrade={2: _same})
    def work(a: int) -> None: ...

    for option in ("version", "upgrade", "version_grace"):
        with pytest.raises(ConfigurationError, match=f"{option} belongs to the job type"):
            work.options(**{option: 1})


def test_the_grace_period_is_the_job_types_else_the_apps(tmp_path: Path) -> None:
    app = Offload(f"sqlite:///{tmp_path / 'a.db'}", version_grace=timedelta(minutes=5))

    @app.job
    def plain() -> None: ...

    @app.job(version_grace=10)
    def own() -> None: ...

    assert (plain.version, plain.version_grace, own.version_grace) == (1, 300.0, 10.0)
    other = Offload(f"sqlite:///{tmp_path / 'b.db'}")
    assert other.config.version_grace == DEFAULT_GRACE == 3600.0


def test_enqueue_stamps_the_job_types_version(app: Offload) -> None:
    @app.job(version=3, upgrade={2: _same, 3: _same})
    def work(a: int) -> None: ...

    @app.job
    def plain() -> None: ...

    jobs = [
        work.enqueue(1),
        work.options(queue="other").enqueue(2),  # the per-call path
        plain.enqueue(),
        *app.enqueue_many([work.prepare(3), plain.prepare()]),
    ]
    assert [app.store.job_get(j.id).version for j in jobs] == [3, 3, 1, 3, 1]  # type: ignore[union-attr]


def test_an_upgrade_chain_runs_step_by_step() -> None:
    seen: list[tuple[int, dict[str, Any]]] = []

    def to2(args: dict[str, Any]) -> dict[str, Any]:
        seen.append((2, dict(args)))
        return {"email": args["address"]}

    def to3(args: dict[str, Any]) -> dict[str, Any]:
        seen.append((3, dict(args)))
        return {**args, "locale": "en"}

    v = versions_of("mail", 3, {3: to3, 2: to2}, None)
    assert v.upgrade("mail", {"address": "a@x"}, 1) == {"email": "a@x", "locale": "en"}
    assert seen == [(2, {"address": "a@x"}), (3, {"email": "a@x"})]
    seen.clear()
    assert v.upgrade("mail", {"email": "b@x"}, 2) == {"email": "b@x", "locale": "en"}
    assert [step for step, _ in seen] == [3]
    seen.clear()
    assert v.upgrade("mail", {"email": "c@x", "locale": "fr"}, 3) == {
        "email": "c@x",
        "locale": "fr",
    }
    assert seen == []


def test_an_upgrader_gets_a_copy_of_the_arguments() -> None:
    def meddle(args: dict[str, Any]) -> dict[str, Any]:
        args["touched"] = True
        return args

    given = {"a": 1}
    Versions(2, {2: meddle}).upgrade("k", given, 1)
    assert given == {"a": 1}


def test_a_failing_step_is_named() -> None:
    def to2(args: dict[str, Any]) -> dict[str, Any]:
        return {**args, "b": 2}

    def to3(args: dict[str, Any]) -> dict[str, Any]:
        return {"c": args["missing"]}

    v = versions_of("work", 3, {2: to2, 3: to3}, None)
    with pytest.raises(UpgradeError) as caught:
        v.upgrade("work", {"a": 1}, 1)
    assert str(caught.value) == (
        "work: upgrading arguments from version 2 to 3 failed: KeyError: 'missing'"
    )
    assert isinstance(caught.value.__cause__, KeyError)


def test_upgraders_no_job_needs_may_be_left_out() -> None:
    v = versions_of("work", 3, {3: lambda args: {**args, "c": 3}}, None)
    assert v.upgrade("work", {"b": 2}, 2) == {"b": 2, "c": 3}
    with pytest.raises(UpgradeError) as caught:
        v.upgrade("work", {"a": 1}, 1)
    assert str(caught.value) == (
        "work: upgrading arguments from version 1 to 2 is not possible: this job type has no "
        "upgrade[2] any more (it upgrades from version 2 on)"
    )


def test_a_step_that_returns_no_arguments_is_named() -> None:
    v = versions_of("work", 2, {2: lambda args: None}, None)
    with pytest.raises(UpgradeError, match="from version 1 to 2 returned NoneType, not a dict"):
        v.upgrade("work", {}, 1)


# --- a worker's side, through offload.testing.drain (the real executor, on a SQLite file) -----
def _newer_job(app: Offload, kind: str, version: int, **meta: Any) -> int:
    prepared = app.job_type(kind).prepare()
    new = replace(prepared.new, version=version, meta=dict(meta))
    return app.store.job_insert_many([new])[0].id


def test_a_newer_job_is_given_back_without_an_attempt(app: Offload) -> None:
    @app.job(version=2, upgrade={2: _same}, backoff=30)
    def work() -> None: ...

    job_id = _newer_job(app, "work", 5)
    result = drain(app, with_scheduled=True)  # a refused job is not made due again
    assert (result.completed, result.retried, result.dead) == (0, 1, 0)
    r = app.store.job_get(job_id)
    assert r is not None and (r.state, r.attempt) == ("retryable", 0)
    assert r.errors[-1]["error"].startswith(
        "NewerVersionError: job has argument version 5, this worker knows up to 2 (work)"
    )
    assert 25 < r.scheduled_at - app.store.now() <= 30  # after the job type's backoff


def test_past_its_grace_period_a_newer_job_fails_as_any_other(app: Offload) -> None:
    @app.job(version_grace=50, max_attempts=1)
    def work() -> None: ...

    waited = _newer_job(app, "work", 2, **{WAIT_META: app.store.now() - 100})
    fresh = _newer_job(app, "work", 2, **{WAIT_META: app.store.now() - 10})
    result = drain(app)
    assert (result.dead, result.retried) == (1, 1)
    r = app.store.job_get(waited)
    assert r is not None and (r.state, r.attempt) == ("dead", 1)
    assert (
        "no worker that knows it took the job within its grace period of 50 s"
        in (r.errors[-1]["error"])
    )
    assert r.errors[-1]["kind"] == "error"
    f = app.store.job_get(fresh)
    assert f is not None and (f.state, f.attempt) == ("retryable", 0)
    assert f.scheduled_at - app.store.now() <= 40  # never past the grace period's end


def test_a_failed_upgrade_fails_the_attempt(app: Offload) -> None:
    def boom(args: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("cannot")

    @app.job(version=2, upgrade={2: boom}, max_attempts=1)
    def work() -> None: ...

    job_id = _newer_job(app, "work", 1)
    assert drain(app).dead == 1
    r = app.store.job_get(job_id)
    assert r is not None
    assert r.errors[-1]["error"] == (
        "UpgradeError: work: upgrading arguments from version 1 to 2 failed: RuntimeError: cannot"
    )
    assert "RuntimeError: cannot" in r.errors[-1]["traceback"]


def test_an_async_job_is_upgraded_too(app: Offload) -> None:
    @app.job(version=2, upgrade={2: lambda args: {"n": args["m"] * 10}})
    async def work(n: int) -> int:
        return n + 1

    old = replace(work.prepare(0).new, args={"m": 4}, args_json=None, version=1)
    old_id = app.store.job_insert_many([old])[0].id
    assert drain(app).completed == 1
    r = app.store.job_get(old_id)
    assert r is not None and r.result == 41
