"""Load shedding in real worker processes: blackhole rules added and removed while workers run,
and jobs claimed after their expiry, shed instead of run."""

from __future__ import annotations

from offload import Offload

from ._harness import Ledger, Procs, state_is, wait_until


def test_a_rule_added_while_workers_run_sheds_matching_jobs_on_every_worker(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    workers = [procs.worker(concurrency=2), procs.worker(concurrency=2)]
    for w in workers:
        w.wait_log("running queues")
    # Enqueued before the rule exists (so not shed at enqueue), held back until it does.
    blocked = [app.call("record", delay=3600).enqueue(key=f"blocked-{i}") for i in range(4)]
    allowed = [app.call("record", delay=3600).enqueue(key=f"allowed-{i}") for i in range(4)]

    rule = app.rules.add(
        kind="record",
        where='args.key in ["blocked-0", "blocked-1", "blocked-2", "blocked-3"]',
        reason="integration test",
    )
    for w in workers:  # each worker reads the rules within its refresh (0.5 s)
        w.wait_log(f"blackhole rules now: [{rule.id}]")
    for job in blocked + allowed:
        assert app.store.job_retry(job.id)

    for job in blocked:
        shed = wait_until(state_is(app, job.id, "shed"))
        assert shed.errors[-1]["kind"] == "shed"
        assert shed.errors[-1]["rule"] == rule.id
        assert shed.meta["shed_rule"] == rule.id
        assert "integration test" in shed.errors[-1]["error"]
        assert shed.attempt == 0
    for job in allowed:
        wait_until(state_is(app, job.id, "completed"))
    assert all(ledger.count("run", f"blocked-{i}") == 0 for i in range(4))
    assert all(ledger.count("run", f"allowed-{i}") == 1 for i in range(4))
    assert app.store.counters().get("shed", 0) == 4

    assert app.rules.remove(rule.id)
    for w in workers:
        w.wait_log("blackhole rules now: none")
    assert app.store.job_retry(blocked[0].id)
    wait_until(state_is(app, blocked[0].id, "completed"))
    assert ledger.count("run", "blocked-0") == 1


def test_a_job_claimed_after_its_expiry_is_shed_not_run(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    # No maintenance in this worker: the expiry is caught by the claim, not by the sweep.
    worker = procs.worker(maintenance=False)
    worker.wait_log("running queues")
    late = app.call("record", delay=3600, expires=0.05).enqueue(key="late")
    expires_at = late.record.expires_at
    assert expires_at is not None
    wait_until(lambda: app.store.now() > expires_at, what="the store's clock to pass the expiry")
    on_time = app.call("record", expires=3600).enqueue(key="on-time")

    assert app.store.job_retry(late.id)

    shed = wait_until(state_is(app, late.id, "shed"))
    assert shed.errors[-1]["attempt"] == 1  # claimed, then shed instead of run
    assert "expired" in shed.errors[-1]["error"]
    wait_until(state_is(app, on_time.id, "completed"))
    assert ledger.count("run", "late") == 0
    assert ledger.count("run", "on-time") == 1


def test_the_maintenance_leader_sheds_waiting_jobs_that_expire(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    procs.worker()
    waiting = app.call("record", delay=3600, expires=0.2).enqueue(key="waiting")

    shed = wait_until(state_is(app, waiting.id, "shed"))
    assert shed.errors[-1]["attempt"] == 0  # never claimed
    assert ledger.count("run", "waiting") == 0
