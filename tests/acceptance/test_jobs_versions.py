"""`offload jobs versions`: the jobs still to run per kind and argument version, as a table and
as JSON, so that an operator sees when the last job of an old version is gone."""

from __future__ import annotations

from pathlib import Path

from offload.store._contract import NewJob

from ._helpers import APP, CLI, opened


def _seed(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'versions.db'}"
    with opened(url) as store:
        store.migrate()
        jobs = [
            NewJob("add", "default", {"a": 1, "b": 2}, version=1),
            NewJob("add", "default", {"a": 1, "b": 2}, version=1, delay=3600),
            NewJob("add", "default", {"a": 1, "b": 2}, version=2),
            NewJob("send", "mail", {"to": "x"}, version=3),
            NewJob("gone", "default", {}, version=1),
        ]
        ids = [i.id for i in store.job_insert_many(jobs)]
        store.job_cancel(ids[-1])  # finished jobs are not counted
    return url


def test_versions_as_json(cli: CLI, tmp_path: Path) -> None:
    url = _seed(tmp_path)
    rows = cli("jobs", "versions", "--url", url, "--json").json()
    assert rows == [
        {
            "kind": "add",
            "version": 1,
            "available": 1,
            "scheduled": 1,
            "retryable": 0,
            "running": 0,
            "total": 2,
            "declared": None,
        },
        {
            "kind": "add",
            "version": 2,
            "available": 1,
            "scheduled": 0,
            "retryable": 0,
            "running": 0,
            "total": 1,
            "declared": None,
        },
        {
            "kind": "send",
            "version": 3,
            "available": 1,
            "scheduled": 0,
            "retryable": 0,
            "running": 0,
            "total": 1,
            "declared": None,
        },
    ]
    only = cli("jobs", "versions", "--url", url, "--kind", "send", "--json").json()
    assert [(r["kind"], r["version"]) for r in only] == [("send", 3)]
    declared = cli("jobs", "versions", "--app", APP, "--url", url, "--json").json()
    assert {(r["kind"], r["version"]): r["declared"] for r in declared} == {
        ("add", 1): 1,  # cliapp declares add without version=: version 1
        ("add", 2): 1,
        ("send", 3): None,
    }


def test_versions_as_a_table(cli: CLI, tmp_path: Path) -> None:
    url = _seed(tmp_path)
    out = cli("jobs", "versions", "--url", url).out.splitlines()
    assert out[0].split() == [
        "KIND",
        "VERSION",
        "AVAILABLE",
        "SCHEDULED",
        "RETRYABLE",
        "RUNNING",
        "TOTAL",
        "CODE",
    ]
    assert [line.split() for line in out[1:]] == [
        ["add", "1", "1", "1", "0", "0", "2", "-"],
        ["add", "2", "1", "0", "0", "0", "1", "-"],
        ["send", "3", "1", "0", "0", "0", "1", "-"],
    ]


def test_no_jobs_to_run(cli: CLI, tmp_path: Path) -> None:
    url = _seed(tmp_path)
    result = cli("jobs", "versions", "--url", url, "--kind", "gone")
    assert result.out == ""
    assert "no jobs to run of kind 'gone'" in result.err
    assert cli("jobs", "versions", "--url", url, "--kind", "gone", "--json").json() == []
