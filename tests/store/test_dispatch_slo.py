"""SLO attainment: of recently started jobs with a deadline, how many started by it and how late
the others were, per job type."""

from __future__ import annotations

from offload.store._contract import Store

from ._helpers import claim, claim_one, fail, get, insert, new_job


def test_attainment_counts_on_time_and_late_starts_per_kind(store: Store) -> None:
    now = store.now()
    insert(
        store,
        new_job("report", slo=3600.0),
        new_job("report", slo=3600.0),
        new_job("alert", slo=10.0, scheduled_at=now - 100),  # due 100 s ago: ~90 s late
        new_job("alert", slo=10.0, scheduled_at=now - 40),  # ~30 s late
        new_job("alert", slo=60.0),
        new_job("plain"),
    )
    assert len(claim(store, limit=10)) == 6
    got = {s.kind: s for s in store.job_slo_attainment(now - 1)}
    assert set(got) == {"alert", "report"}
    report, alert = got["report"], got["alert"]
    assert (report.started, report.on_time, report.share, report.late_max) == (2, 2, 1.0, None)
    assert (alert.started, alert.on_time) == (3, 1)
    assert alert.late_max is not None and 89 <= alert.late_max <= 95
    assert alert.late_avg is not None and 59 <= alert.late_avg <= 65


def test_only_jobs_started_since_the_time_count(store: Store) -> None:
    insert(store, new_job("report", slo=60.0))
    claim(store, limit=10)
    assert store.job_slo_attainment(store.now() + 1) == []
    assert store.job_slo_attainment(store.now() - 60)[0].started == 1


def test_a_retry_is_due_again_and_so_is_its_deadline(store: Store) -> None:
    (job_id,) = insert(store, new_job("report", slo=30.0, scheduled_at=store.now() - 1000))
    fail(store, claim_one(store), retry_in=5.0)
    record = get(store, job_id)
    assert record.deadline is not None
    assert abs(record.deadline - (record.scheduled_at + 30.0)) < 1e-3
    assert record.scheduled_at > store.now()
