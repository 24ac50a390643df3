"""Alerts evaluated by the maintenance leader: a rule on a queue's depth fires when the queue
backs up and resolves when it is drained; both events are logged, kept in the store's history
and posted to the rule's webhook by offload's own delivery job, signed as Standard Webhooks
says (verified here with the standardwebhooks library)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from offload import Offload
from offload.maintenance import Maintenance
from offload.testing import drain

from .test_push import Receiver

SECRET = "whsec_" + base64.b64encode(b"alerts secret of 24 bytes").decode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def tick(maintenance: Maintenance) -> None:
    """One round of the leader's loop with every duty due."""
    for duty in maintenance.duties:
        duty.next_at = 0.0
    maintenance.tick()


def test_an_alert_fires_then_resolves_and_its_webhooks_are_signed(
    store_url: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    app = Offload(store_url)
    app.webhooks.secrets = [SECRET]

    @app.job(queue="mail")
    def send(n: int) -> None:
        pass

    app.alert("mail-backlog", "queue_depth", 2, target="mail", webhook=receiver.url)
    app.alert("no-dead", "dead_per_hour", 0)  # never breached here
    leader = Maintenance(app, "leader")
    caplog.set_level(logging.INFO, logger="offload.alerts")
    try:
        tick(leader)
        assert leader.is_leader
        assert app.alerts.states() == {}  # nothing breached, nothing recorded
        for n in range(3):
            send.enqueue(n)
        tick(leader)

        state = app.alerts.states()["mail-backlog"]
        assert state.firing and state.value == 3
        assert "alert mail-backlog: queue_depth (mail) is 3 jobs, above 2" in caplog.text
        drain(app, ["default"])  # the delivery job, as a worker of the default queue runs it
        ((headers, body),) = receiver.delivered()
        event = Webhook(SECRET).verify(body, headers)
        assert event["type"] == "alert.firing"
        assert event["data"]["alert"] == "mail-backlog"
        assert (event["data"]["value"], event["data"]["threshold"]) == (3, 2)

        drain(app, ["mail"])
        tick(leader)
        assert not app.alerts.states()["mail-backlog"].firing
        assert "alert mail-backlog resolved" in caplog.text
        drain(app, ["default"])
        resolved = Webhook(SECRET).verify(receiver.delivered()[1][1], receiver.delivered()[1][0])
        assert resolved["type"] == "alert.resolved"
        assert resolved["data"]["value"] == 0

        history = [(e.name, e.state) for e in app.alerts.history()]
        assert history == [("mail-backlog", "resolved"), ("mail-backlog", "firing")]
        assert "no-dead" not in {n for n, _ in history}
        assert json.loads(body)["data"]["message"].startswith("alert mail-backlog")
    finally:
        leader.stopped()
        app.close()


def test_a_rule_added_at_run_time_fires_after_its_duration_and_resolves_when_removed(
    store_url: str,
) -> None:
    app = Offload(store_url)

    @app.job(queue="mail")
    def send(n: int) -> None:
        pass

    app.alerts.add("slow", "workers_alive", 1, target="mail", for_seconds=3600)
    app.alerts.add("none", "workers_alive", 1)
    leader = Maintenance(app, "leader")
    try:
        tick(leader)
        states = app.alerts.states()
        assert "slow" not in states  # breached, but not for an hour yet
        assert states["none"].firing and states["none"].value == 0
        assert app.alerts.remove("none")
        tick(leader)
        assert "none" not in app.alerts.states()
        assert [e.state for e in app.alerts.history(name="none")] == ["firing"]
    finally:
        leader.stopped()
        app.close()


def test_a_stuck_saga_fires_its_alert(store_url: str) -> None:
    from tests.store.test_workflows import _run_all, _saga

    app = Offload(store_url)
    app.alert("sagas", "stuck_sagas", 0)
    leader = Maintenance(app, "leader")
    try:
        store = app.store
        _saga(store, 2)
        _run_all(store)
        _run_all(store, ok=False)  # the second step dies: the saga compensates
        _run_all(store, ok=False)  # and its undo dies too: stuck
        assert store.workflow_counts() == {"stuck": 1}
        tick(leader)
        state = app.alerts.states()["sagas"]
        assert state.firing and state.value == 1
        (event,) = app.alerts.history()
        assert event.message == "alert sagas: stuck_sagas is 1, above 0"
    finally:
        leader.stopped()
        app.close()
