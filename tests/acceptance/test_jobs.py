"""`offload jobs list / show / retry / cancel` on a store seeded by a real worker."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from offload.store._contract import ClaimParams

from ._helpers import CLI, Seeded, copy_store, job, opened


def test_list_shows_every_job_newest_first(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    records = cli("jobs", "list", "--url", url, "--json").json()
    assert [r["id"] for r in records] == sorted(
        [ids.added, ids.greeted, ids.exploded, ids.later, ids.waiting], reverse=True
    )
    states = {r["id"]: r["state"] for r in records}
    assert states == {
        ids.added: "completed",
        ids.greeted: "completed",
        ids.exploded: "dead",
        ids.later: "scheduled",
        ids.waiting: "available",
    }


def test_list_filters(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded

    def listed(*args: str) -> list[int]:
        return [r["id"] for r in cli("jobs", "list", "--url", url, "--json", *args).json()]

    assert listed("--state", "dead") == [ids.exploded]
    assert listed("-s", "dead", "-s", "scheduled") == [ids.later, ids.exploded]
    assert listed("--queue", "emails") == [ids.later, ids.greeted]
    assert listed("--kind", "add") == [ids.waiting, ids.added]
    assert listed("--kind", "add", "--state", "completed") == [ids.added]
    assert listed("--limit", "1") == [ids.waiting]
    assert listed("--before", str(ids.greeted)) == [ids.added]
    assert listed("--kind", "nothing") == []


def test_list_as_a_table(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    result = cli("jobs", "list", "--url", url)
    header, *rows = result.out.splitlines()
    assert header.split() == [
        "ID",
        "KIND",
        "QUEUE",
        "STATE",
        "ATTEMPT",
        "INSERTED",
        "FINISHED",
        "LAST",
        "ERROR",
    ]
    assert len(rows) == 5
    dead = next(r for r in rows if r.split()[0] == str(ids.exploded))
    assert "explode" in dead and "dead" in dead and "RuntimeError: kaput" in dead


def test_list_of_nothing_says_so(cli: CLI, fresh_url: str) -> None:
    result = cli("jobs", "list", "--url", fresh_url)
    assert result.out == "" and "no jobs match" in result.err
    assert cli("jobs", "list", "--url", fresh_url, "--json").json() == []


def test_list_refuses_an_unknown_state(cli: CLI, fresh_url: str) -> None:
    result = cli("jobs", "list", "--state", "lost", "--url", fresh_url, code=2)
    assert "'lost' is not one of" in result.err


def test_show_json_has_every_field(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    data = cli("jobs", "show", str(ids.added), "--url", url, "--json").json()
    assert data["id"] == ids.added
    assert data["kind"] == "add" and data["args"] == {"a": 1, "b": 2}
    assert data["state"] == "completed" and data["result"] == 3
    assert data["attempt"] == 1 and data["errors"] == []
    for name in ("inserted_at", "scheduled_at", "attempted_at", "finished_at"):
        assert data[name].endswith("Z")
        datetime.fromisoformat(data[name])  # parses as ISO 8601
    dead = cli("jobs", "show", str(ids.exploded), "--url", url, "--json").json()
    assert dead["state"] == "dead"
    (error,) = dead["errors"]
    assert error["attempt"] == 1
    assert error["error"] == "RuntimeError: kaput"
    assert "Traceback" in error["traceback"] and error["at"].endswith("Z")


def test_show_for_people(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    out = cli("jobs", "show", str(ids.exploded), "--url", url).out
    assert out.startswith(f"job {ids.exploded}")
    assert "explode" in out and "dead" in out
    assert '{"reason": "kaput"}' in out
    assert "attempt 1 at " in out and "RuntimeError: kaput" in out
    assert "| Traceback (most recent call last):" in out
    shown = cli("jobs", "show", str(ids.added), "--url", url).out
    assert "result      3" in shown


def test_show_of_an_unknown_id_exits_1(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, _ = seeded
    result = cli("jobs", "show", "99999", "--url", url, code=1)
    assert result.err.strip() == "Error: job 99999 does not exist (it may have been pruned)"
    assert cli("jobs", "show", "abc", "--url", url, code=2).out == ""


def test_retry_makes_a_dead_job_available(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    result = cli("jobs", "retry", str(ids.exploded), "--url", url)
    assert f"retried job {ids.exploded}" in result.out
    record = job(url, ids.exploded)
    assert record.state == "available"
    assert record.max_attempts > record.attempt  # one more attempt is allowed


def test_retry_reports_each_id_and_fails_for_bad_ones(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    result = cli(
        "jobs",
        "retry",
        str(ids.exploded),
        "99999",
        str(ids.waiting),
        "--url",
        url,
        "--json",
        code=1,
    )
    outcomes = {o["id"]: o for o in result.json()}
    assert outcomes[ids.exploded]["ok"] and outcomes[ids.exploded]["state"] == "available"
    assert not outcomes[99999]["ok"] and "does not exist" in outcomes[99999]["error"]
    assert not outcomes[ids.waiting]["ok"]
    assert f"job {ids.waiting} is available" in outcomes[ids.waiting]["error"]
    assert job(url, ids.exploded).state == "available"


def test_cancel(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    result = cli("jobs", "cancel", str(ids.later), str(ids.waiting), "--url", url)
    assert result.out.splitlines() == [
        f"cancelled job {ids.later} (now cancelled)",
        f"cancelled job {ids.waiting} (now cancelled)",
    ]
    assert job(url, ids.later).state == "cancelled"
    assert job(url, ids.waiting).state == "cancelled"


def test_cancel_of_finished_or_unknown_jobs_exits_1(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    result = cli("jobs", "cancel", str(ids.added), "424242", "--url", url, code=1)
    assert f"Error: job {ids.added} is completed: only scheduled, available or retryable" in (
        result.err
    )
    assert "Error: job 424242 does not exist" in result.err
    assert job(url, ids.added).state == "completed"


def test_commands_need_an_existing_store(cli: CLI) -> None:
    result = cli("jobs", "list", "--url", "missing.db", code=1)
    assert "no store at missing.db" in result.err
    assert not (cli.cwd / "missing.db").exists()  # reading never creates a store


def test_url_comes_from_the_environment(seeded: tuple[str, Seeded], tmp_path: Path) -> None:
    url, _ = seeded
    from_env = CLI(tmp_path, env={"OFFLOAD_URL": url})
    assert len(from_env("jobs", "list", "--json").json()) == 5


def test_url_defaults_to_offload_db_in_the_working_folder(
    seeded_template: tuple[Path, Seeded], tmp_path: Path
) -> None:
    template, _ = seeded_template
    copy_store(template, tmp_path / "offload.db")
    assert len(CLI(tmp_path)("jobs", "list", "--json").json()) == 5


def test_app_option_lends_its_url(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    records = cli("jobs", "list", "--app", "cliapp:app", "--url", url, "--json").json()
    assert len(records) == 5


def test_cancel_asks_a_running_job_to_stop(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    with opened(url) as store:
        (claimed,) = store.job_claim(ClaimParams(["nobody"], 1, "w1", 60.0))
    result = cli("jobs", "cancel", str(claimed.id), "--url", url)
    assert f"cancelled job {claimed.id} (running: asked to stop" in result.out
    with opened(url) as store:
        record = store.job_get(claimed.id)
    assert record is not None and record.state == "running"
    assert record.stop_request == "cancel"
