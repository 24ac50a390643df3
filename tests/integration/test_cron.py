"""Cron with several worker processes: one job per tick (catalogue D2, without the clock jumps)."""

from __future__ import annotations

import signal

from offload import Offload

from ._harness import Ledger, Procs, all_jobs, wait_until


def test_cron_fires_once_per_tick_with_three_worker_processes(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    workers = [
        procs.worker(concurrency=2, name=f"cron{i}", env={"OFFLOAD_TEST_CRON": "1"})
        for i in range(3)
    ]

    def completed_ticks() -> int:
        return sum(1 for j in all_jobs(app, kind="tick") if j.state == "completed")

    wait_until(lambda: completed_ticks() >= 3, what="3 cron ticks to run")
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait_exit() == 0

    jobs = all_jobs(app, kind="tick")
    ticks = [j.meta["tick"] for j in jobs]
    assert len(ticks) >= 3
    assert sorted(ticks) == sorted(set(ticks)), f"a tick fired twice: {sorted(ticks)}"
    assert all(t == int(t) for t in ticks), ticks  # every second, on the second
    assert {j.meta["cron"] for j in jobs} == {"every-second"}
    completed = [j for j in jobs if j.state == "completed"]
    assert ledger.count("run", "tick") == len(completed)
    print(f"\ncron ticks fired: {len(ticks)}, ran: {len(completed)}")
