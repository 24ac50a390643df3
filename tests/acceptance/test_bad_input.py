"""`offload enqueue` and `offload rules add` refuse bad strings (a lone surrogate, as the shell
gives for bytes that are not UTF-8, or a NUL) and bad names with exit 2 and one line, store
nothing, and apply backlog bounds as every enqueue path does; odd but harmless names are
stored literally."""

from __future__ import annotations

import pytest

from ._helpers import APP, CLI, opened


def _stored(url: str) -> list[tuple[str, str]]:
    with opened(url) as store:
        return sorted((c.queue, c.state) for c in store.job_counts())


def _one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["greet", "name=caf\udce9"], ["lone surrogate", "args.name"]),
        (["greet", "--args", '{"name": "a\\u0000b"}'], ["NUL character", "args.name"]),
        (["greet", "name=ada", "--queue", "emails\n"], ["queue 'emails\\n'", "control character"]),
        (["greet", "name=ada", "--queue", " emails"], ["white space"]),
    ],
    ids=["surrogate", "nul", "newline-queue", "spaced-queue"],
)
def test_bad_strings_are_usage_errors_and_store_nothing(
    cli: CLI, fresh_url: str, args: list[str], fragments: list[str]
) -> None:
    result = cli("enqueue", APP, *args, "--url", fresh_url, code=2)
    _one_line_error(result.err, *fragments)
    assert _stored(fresh_url) == []


def test_odd_queue_names_are_stored_literally(cli: CLI, fresh_url: str) -> None:
    odd = ["'; DROP TABLE jobs; --", 'q"uote', "back\\slash", "100%", "🎉"]
    for queue in odd:
        cli("enqueue", APP, "greet", "name=ada", "--queue", queue, "--url", fresh_url)
    assert _stored(fresh_url) == sorted((q, "available") for q in odd)


def test_a_bad_rule_reason_is_a_usage_error(cli: CLI, fresh_url: str) -> None:
    reason = "caf\udce9"  # what a shell passes for the Latin-1 bytes of "café"
    result = cli("rules", "add", "--kind", "add", "--reason", reason, "--url", fresh_url, code=2)
    _one_line_error(result.err, "lone surrogate")
    assert cli("rules", "list", "--url", fresh_url, "--json").json() == []


def test_enqueue_applies_the_backlog_bound_of_a_job_type(cli: CLI, fresh_url: str) -> None:
    cli("enqueue", APP, "bounded", "--url", fresh_url)
    result = cli("enqueue", APP, "bounded", "--url", fresh_url, code=1)
    _one_line_error(result.err, "job type 'bounded'", "bound of 1")
    assert _stored(fresh_url) == [("bounded", "available")]
