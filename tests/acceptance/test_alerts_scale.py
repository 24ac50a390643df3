"""`offload scale` and `offload alerts …` through the real CLI: a recommendation per queue
with its arithmetic written out, and an alert added at run time that a real worker's
maintenance leader fires, listed as firing and kept in the history."""

from __future__ import annotations

from pathlib import Path

from offload.store._contract import ClaimParams, Completion, NewJob

from ._helpers import CLI, opened, running_worker, wait_until


def test_scale_recommends_workers_and_explains_why(cli: CLI, fresh_url: str) -> None:
    with opened(fresh_url) as store:
        now = store.now()
        store.job_insert_many([NewJob("add", "default", {}) for _ in range(2)])
        done = store.job_claim(ClaimParams(["default"], 2, "w", 60.0))
        store.job_complete_many([Completion(j.id, j.lease_token) for j in done])
        store.job_insert_many(
            [NewJob("greet", "emails", {}, scheduled_at=now - 90) for _ in range(300)]
        )

    found = cli(
        "scale", "--url", fresh_url, "--target-lag", "1m", "--slots", "4", "--window", "0", "--json"
    ).json()
    emails = next(q for q in found if q["queue"] == "emails")
    assert emails["depth"] == 300 and emails["oldest_age_seconds"] >= 90
    assert emails["arrival_per_second"] is None  # --window 0: not measured
    # Nothing of the queue was timed yet: one slot while jobs wait.
    assert (emails["recommended"]["slots"], emails["recommended"]["workers"]) == (1, 1)
    default = next(q for q in found if q["queue"] == "default")
    assert default["run_seconds"] is not None and default["recommended"]["workers"] == 0

    text = cli("scale", "--url", fresh_url, "--target-lag", "1m", "--window", "0.2").out
    header = text.splitlines()[0].split()
    assert header == [
        "QUEUE", "WAITING", "OLDEST", "ARRIVING", "SERVED", "RUN", "LIVE", "SLOTS", "WORKERS"
    ]  # fmt: skip
    assert "needed rate = 0/s + 300 / 60s = 5 jobs/s" in text
    assert "workers = ceil(1 / 10 slots per worker) = 1" in text

    bad = cli("scale", "--url", fresh_url, "--target-lag", "soon", code=2)
    assert "--target-lag 'soon' is not a duration" in bad.err


def test_alerts_added_fire_on_a_running_worker_and_are_removed(
    cli: CLI, fresh_url: str, tmp_path: Path
) -> None:
    added = cli(
        "alerts", "add", "crowd", "--condition", "workers_alive", "--below", "5",
        "--url", fresh_url, "--json",
    ).json()  # fmt: skip
    assert added["description"] == "workers_alive below 5"
    text = cli(
        "alerts", "add", "backlog", "-c", "queue_depth", "-t", "emails", "--above", "1000",
        "--for", "5m", "--url", fresh_url,
    ).out  # fmt: skip
    assert text.strip() == "added alert backlog: queue_depth of emails above 1000 for 300s"

    wrong = cli(
        "alerts", "add", "x", "-c", "queue_depth", "--below", "3", "--url", fresh_url, code=2
    )
    assert "queue_depth fires above a threshold: give --above" in wrong.err
    wrong = cli(
        "alerts", "add", "x", "-c", "dead_per_hour", "-t", "q", "--above", "3", "--url", fresh_url,
        code=2,
    )  # fmt: skip
    assert "takes no target" in wrong.err

    with running_worker(cli, fresh_url, tmp_path / "worker.log"):

        def firing() -> list[str]:
            rows = cli("alerts", "list", "--url", fresh_url, "--json").json()
            return [r["name"] for r in rows if r["firing"]]

        assert wait_until(firing, "the leader to fire the alert") == ["crowd"]
    listed = cli("alerts", "list", "--url", fresh_url).out
    assert listed.splitlines()[0].split()[:3] == ["NAME", "STATE", "RULE"]
    assert "FIRING" in listed and "backlog" in listed

    history = cli("alerts", "history", "--url", fresh_url, "--json").json()
    assert history[-1]["alert"] == "crowd" and history[-1]["state"] == "firing"
    assert "workers_alive is 1, below 5" in history[-1]["message"]

    assert cli("alerts", "remove", "crowd", "--url", fresh_url).out.strip() == "removed alert crowd"
    missing = cli("alerts", "remove", "crowd", "--url", fresh_url, code=1)
    assert "there is no run-time alert crowd" in missing.err
    assert [r["name"] for r in cli("alerts", "list", "--url", fresh_url, "--json").json()] == [
        "backlog"
    ]
