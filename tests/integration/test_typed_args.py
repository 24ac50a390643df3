"""Arguments of richer types with a real worker process on every engine: a dataclass and a
datetime are stored as JSON at enqueue and converted back in the worker before the call
(docs/typing.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from offload import Offload

from ._harness import Procs, state_is, wait_until
from .typedapp import Order, make_app

APP = "tests.integration.typedapp:app"


def test_a_worker_calls_the_job_with_the_types_it_declares(app: Offload, procs: Procs) -> None:
    producer = make_app(app.config.url)
    try:
        placed = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
        order = Order(7, Decimal("19.90"), placed)
        job = producer.job_type("invoice").enqueue(order, datetime(2030, 1, 9, 9, 30, tzinfo=UTC))
        assert job.args == {
            "order": {"id": 7, "total": "19.90", "placed": "2030-01-02T09:30:00Z"},
            "due": "2030-01-09T09:30:00Z",
        }
        procs.worker(app=APP)
        done = wait_until(state_is(app, job.id, "completed", "dead"))
        assert done.state == "completed", done.errors
        assert done.result == {
            "order": "Order",
            "total": ["Decimal", "19.90"],
            "placed": ["datetime", "2030-01-02T09:30:00+00:00"],
            "due": ["datetime", "2030-01-09T09:30:00+00:00"],
            "days": 7,
        }
    finally:
        producer.close()
