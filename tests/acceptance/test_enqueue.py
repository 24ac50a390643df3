"""`offload enqueue`: arguments by name, options, --json, --wait, and every way it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._helpers import APP, CLI, job, opened, running_worker


def test_key_value_arguments_are_json_when_they_parse(cli: CLI, fresh_url: str) -> None:
    out = cli("enqueue", APP, "add", "a=1", "b=41", "--url", fresh_url).out
    record = job(fresh_url, int(out))
    assert record.kind == "add"
    assert record.args == {"a": 1, "b": 41}
    assert record.state == "available"


def test_values_that_are_not_json_are_strings(cli: CLI, fresh_url: str) -> None:
    first = cli("enqueue", APP, "greet", "name=ada lovelace", "--url", fresh_url).out
    second = cli("enqueue", APP, "greet", 'name="42"', "punctuation=?", "--url", fresh_url).out
    assert job(fresh_url, int(first)).args == {"name": "ada lovelace"}
    assert job(fresh_url, int(second)).args == {"name": "42", "punctuation": "?"}


def test_json_output_is_the_stored_record(cli: CLI, fresh_url: str) -> None:
    result = cli(
        "enqueue",
        APP,
        "add",
        "--args",
        '{"a": 2, "b": 3}',
        "--queue",
        "urgent",
        "--priority",
        "7",
        "--delay",
        "3600",
        "--max-attempts",
        "4",
        "--url",
        fresh_url,
        "--json",
    )
    record = result.json()
    assert record["kind"] == "add"
    assert record["args"] == {"a": 2, "b": 3}
    assert record["queue"] == "urgent"
    assert record["priority"] == 7
    assert record["max_attempts"] == 4
    assert record["state"] == "scheduled"
    assert record["scheduled_at"].endswith("Z") and record["inserted_at"].endswith("Z")
    assert job(fresh_url, record["id"]).queue == "urgent"


def test_args_json_and_key_value_combine(cli: CLI, fresh_url: str) -> None:
    out = cli("enqueue", APP, "add", "--args", '{"a": 1}', "b=2", "--url", fresh_url).out
    assert job(fresh_url, int(out)).args == {"a": 1, "b": 2}


def _nothing_stored(url: str) -> bool:
    with opened(url) as store:
        return store.job_counts() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "x=1"], "no job type named 'nope'"),
        (["add", "--args", "{not json"], "--args is not valid JSON"),
        (["add", "--args", "[1, 2]"], "--args must be a JSON object"),
        (["add", "--args", '{"a": NaN, "b": 1}'], "--args is not valid JSON"),
        (["add", "a=one", "b=2"], "argument 'a' of add() should be int"),
        (["add", "a=1"], "missing required argument 'b'"),
        (["add", "a=1", "b=2", "c=3"], "unknown argument 'c'"),
        (["add", "a", "b=2"], "should look like name=value"),
        (["add", "a=1", "a=2", "b=2"], "'a' is given twice"),
        (["add", "a=1", "b=2", "--priority", "5000"], "priority must be within"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_store_nothing(
    cli: CLI, fresh_url: str, args: list[str], message: str
) -> None:
    result = cli("enqueue", APP, *args, "--url", fresh_url, code=2)
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith("Error: ") and message in lines[0], result
    assert _nothing_stored(fresh_url)


def test_an_app_that_cannot_be_imported_is_a_usage_error(cli: CLI, fresh_url: str) -> None:
    result = cli("enqueue", "no_such_module:app", "add", "--url", fresh_url, code=2)
    assert "cannot import module 'no_such_module'" in result.err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost/0", "unknown store URL"),
        ("sqlite:///no/such/folder/jobs.db", "does not exist"),
    ],
)
def test_bad_urls_are_usage_errors(cli: CLI, url: str, message: str) -> None:
    result = cli("enqueue", APP, "add", "a=1", "b=2", "--url", url, code=2)
    assert message in result.err and "Traceback" not in result.err


# --- waiting for the result, with a real worker ----------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CLI, str]]:
    """A store with a worker serving the default and emails queues."""
    folder = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{folder / 'jobs.db'}"
    cli = CLI(folder)
    with running_worker(cli, url, folder / "worker.log"):
        yield cli, url


def test_wait_prints_the_id_then_the_result(served: tuple[CLI, str]) -> None:
    cli, url = served
    result = cli("enqueue", APP, "greet", "name=ada", "--url", url, "--wait", "60")
    job_id, value = result.out.splitlines()
    assert value == '"hello ada!"'
    assert job(url, int(job_id)).state == "completed"


def test_wait_with_json_prints_the_finished_record(served: tuple[CLI, str]) -> None:
    cli, url = served
    record = cli("enqueue", APP, "add", "a=20", "b=22", "--url", url, "--wait", "60", "--json")
    data = record.json()
    assert data["state"] == "completed"
    assert data["result"] == 42
    assert data["finished_at"].endswith("Z")


def test_wait_for_a_job_that_dies_exits_1(served: tuple[CLI, str]) -> None:
    cli, url = served
    result = cli("enqueue", APP, "explode", "reason=kaput", "--url", url, "--wait", "60", code=1)
    job_id = int(result.out.strip())
    assert f"job {job_id} (explode) is dead" in result.err
    assert "RuntimeError: kaput" in result.err
    assert job(url, job_id).state == "dead"


def test_wait_that_runs_out_exits_1_and_leaves_the_job(served: tuple[CLI, str]) -> None:
    cli, url = served
    result = cli(
        "enqueue",
        APP,
        "add",
        "a=1",
        "b=1",
        "--queue",
        "nobody",
        "--url",
        url,
        "--wait",
        "0.3",
        code=1,
    )
    job_id = int(result.out.strip())
    assert "is still available after 0.3s" in result.err
    assert job(url, job_id).state == "available"


def test_enqueue_creates_the_store_of_a_new_url(cli: CLI, tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    out = cli("enqueue", APP, "add", "a=1", "b=2", "--url", str(path)).out
    assert path.exists()
    assert job(str(path), int(out)).args == {"a": 1, "b": 2}
