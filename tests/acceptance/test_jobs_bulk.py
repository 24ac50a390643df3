"""`offload jobs retry|cancel|discard` with a filter instead of ids: the count, a dry run, the
question on a terminal, and the refusal to act on every job unless --all says so."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from offload.store._contract import JobFilter

from ._helpers import CLI, Seeded, job, opened


def _states(url: str) -> dict[int, str]:
    with opened(url) as store:
        return {r.id: r.state for r in store.job_list(JobFilter(limit=1000))}


def test_a_dry_run_counts_and_changes_nothing(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    before = _states(url)
    result = cli("jobs", "retry", "--state", "dead", "--dry-run", "--url", url)
    assert result.out == "would retry 1 job (dry run: nothing was changed)\n"
    data = cli("jobs", "cancel", "--all", "--dry-run", "--url", url, "--json").json()
    assert data == {"action": "cancel", "dry_run": True, "count": 2, "match": {}}
    data = cli("jobs", "discard", "-k", "add", "--dry-run", "--url", url, "--json").json()
    assert (data["count"], data["match"]) == (2, {"kind": "add"})
    assert _states(url) == before


def test_retry_by_state_kind_and_error(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    miss = cli("jobs", "retry", "--state", "dead", "--error-contain", "other", "--url", url)
    assert miss.out == "retried 0 jobs\n"
    result = cli(
        "jobs", "retry", "-s", "dead", "--kind", "explode", "--error-contain", "KAPUT", "--url", url
    )
    assert result.out == "retried 1 job\n"
    record = job(url, ids.exploded)
    assert record.state == "available" and record.max_attempts > record.attempt


def test_cancel_by_queue_and_discard_by_argument_text(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    data = cli("jobs", "cancel", "--queue", "nobody", "--yes", "--json", "--url", url).json()
    assert data == {"action": "cancel", "dry_run": False, "count": 1, "match": {"queue": "nobody"}}
    assert job(url, ids.waiting).state == "cancelled"
    with opened(url) as store:
        totals = store.job_totals()
    result = cli("jobs", "discard", "--args-contain", '"LATER"', "--url", url)
    assert result.out == "discarded 1 job\n"
    with opened(url) as store:
        assert store.job_get(ids.later) is None
        assert store.job_totals() == totals  # what it counted stays
    assert set(_states(url)) == {ids.added, ids.greeted, ids.exploded, ids.waiting}


def test_times_as_durations_and_iso(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, _ = seeded

    def count(*args: str) -> int:
        data = cli("jobs", "discard", *args, "--dry-run", "--json", "--url", url).json()
        return int(data["count"])

    assert count("--since", "1h") == 5
    assert count("--since", "2999-01-01") == 0
    assert count("--until", "2999-01-01T00:00:00+02:00") == 5
    assert count("--finished-since", "1d", "--state", "completed", "--state", "dead") == 3
    listed = cli("jobs", "list", "--finished-since", "1h", "--json", "--url", url).json()
    assert sorted(r["state"] for r in listed) == ["completed", "completed", "dead"]


def test_refusals_are_usage_errors(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    before = _states(url)
    nothing = cli("jobs", "discard", "--url", url, code=2)
    assert "say which jobs to discard" in nothing.err and "--all" in nothing.err
    both = cli("jobs", "retry", str(ids.exploded), "--state", "dead", "--url", url, code=2)
    assert "give job ids or a filter, not both" in both.err
    when = cli("jobs", "cancel", "--since", "yesterday", "--url", url, code=2)
    assert "--since 'yesterday' is neither a duration nor a date-time" in when.err
    long = cli("jobs", "retry", "--args-contain", "x" * 201, "--url", url, code=2)
    assert "at most 200" in long.err
    assert "no store at" in cli("jobs", "retry", "--state", "dead", "--url", "none.db", code=1).err
    assert "say which jobs" in cli("jobs", "retry", "--url", "none.db", code=2).err
    running = cli("jobs", "cancel", "--state", "dead", "--url", url)
    assert running.out == "cancelled 0 jobs\n"
    assert "cancel applies to scheduled, available, retryable jobs only" in running.err
    assert _states(url) == before


def test_single_ids_still_work_and_discard_joins_them(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    result = cli("jobs", "discard", str(ids.added), "999999", "--url", url, code=1)
    assert result.out == f"discarded job {ids.added}\n"
    assert "Error: job 999999 does not exist" in result.err
    assert cli("jobs", "cancel", str(ids.waiting), "--url", url).out == (
        f"cancelled job {ids.waiting} (now cancelled)\n"
    )


def _on_terminal(cli: CLI, answer: bytes, *args: str) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdin and output; answer its question."""
    main, child = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "offload", *args],
        cwd=cli.cwd,
        env=cli.env,
        stdin=child,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the command closed the terminal: it has ended
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(main, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(30), seen.decode("utf-8", "replace").replace("\r\n", "\n")
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_terminal_is_asked_first(cli: CLI, seeded: tuple[str, Seeded]) -> None:
    url, ids = seeded
    code, out = _on_terminal(cli, b"n\n", "jobs", "cancel", "--all", "--url", url)
    assert "Cancel 2 jobs (every job)? [y/N]" in out
    assert code == 1 and "not confirmed: no job was cancelled" in out
    assert job(url, ids.later).state == "scheduled"
    code, out = _on_terminal(cli, b"y\n", "jobs", "discard", "-s", "dead", "--url", url)
    assert "Discard 1 job (state dead)? [y/N]" in out
    assert code == 0 and "discarded 1 job" in out
    with opened(url) as store:
        assert store.job_get(ids.exploded) is None
    code, out = _on_terminal(cli, b"", "jobs", "cancel", "--all", "--yes", "--url", url)
    assert code == 0 and "[y/N]" not in out and "cancelled 2 jobs" in out
