"""The sharding simulation of docs/scaling.md (bench/scaling_sim.py) on a short seeded run: a
tenant move (a fenced copy, or drain and switch) neither loses nor doubles a job, the checks do
see the doubles of a copy without the fence, backlog-weighted polling keeps the worst wait no
longer than round-robin on the skewed load, and one shard's outage leaves the others serving.
Each property is one of these seeded runs, counted in simulated time, never in the test's own
time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.scaling_sim import Config, Result, simulate, skewed


def tiny(**changes: object) -> Config:
    """The skewed case of docs/scaling.md, one simulated second long (the move half-way)."""
    return replace(skewed(seed=1, duration=1.0), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["round-robin", "backlog"])
@pytest.mark.parametrize("move", ["fenced", "drain"])
def test_a_move_loses_and_doubles_no_job(move: str, policy: str) -> None:
    result = simulate(tiny(policy=policy, move=move))

    assert result.enqueued > 10_000
    assert result.redirected > 0  # stale producers were sent on by the source's fence
    if move == "fenced":
        assert result.copied > 0  # the copy did move waiting jobs
    assert result.lost == 0
    assert result.doubled == 0
    assert result.moved_at_end  # the tenant's later jobs all ran on the destination


def test_a_move_without_the_fence_doubles_jobs_and_the_check_sees_them() -> None:
    fenced = simulate(tiny(policy="round-robin"))
    naive = simulate(tiny(policy="round-robin", move="naive"))

    assert fenced.copy_dropped > 0  # claims at the source won races against the copier...
    assert fenced.doubled == 0  # ...and the fence dropped those copies
    assert naive.doubled > 0  # without it, such a race runs the job at both ends
    assert naive.lost == 0


def test_backlog_polling_keeps_the_worst_wait_no_longer_than_round_robin() -> None:
    by_policy: dict[str, Result] = {
        policy: simulate(tiny(policy=policy, move_tenant=None))
        for policy in ("round-robin", "backlog")
    }

    rr, backlog = by_policy["round-robin"], by_policy["backlog"]
    assert backlog.lag["max"] <= rr.lag["max"]
    assert max(backlog.tenant_p99) <= max(rr.tenant_p99)
    assert backlog.lost == rr.lost == 0


def test_the_other_shards_keep_serving_while_one_is_down() -> None:
    result = simulate(tiny(move_tenant=None, outage=(0, 0.5, 0.8)))

    assert result.before_outage_rate > 0
    assert result.outage_rate >= 0.8 * result.before_outage_rate
    assert result.lost == 0  # the down shard's jobs waited in producers' outboxes
    assert result.doubled == 0


def test_the_same_seed_gives_the_same_run() -> None:
    first, second = simulate(tiny()), simulate(tiny())

    assert (first.enqueued, first.lag, first.copied) == (
        second.enqueued,
        second.lag,
        second.copied,
    )


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"policy": "random"}, "policy"),
        ({"move": "teleport"}, "move"),
        ({"shards": 1}, "move needs at least 2 shards"),
        ({"move_tenant": 99}, "move_tenant"),
        ({"outage": (9, 0.1, 0.2)}, "outage shard"),
        ({"shards_per_worker": 0}, "shards_per_worker"),
    ],
)
def test_a_setting_that_cannot_be_simulated_is_named(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        simulate(tiny(**changes))
