"""The job application of the typed-arguments test (test_typed_args.py): a job whose parameters
are a dataclass and a datetime, run by a real `offload worker` process as
`tests.integration.typedapp:app` (its store URL from `$OFFLOAD_URL`). It returns what it was
called with, as the types it got, so the test sees the conversion the worker made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from offload import Offload


@dataclass
class Order:
    id: int
    total: Decimal
    placed: datetime


def make_app(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=5.0, maintenance_interval=0.2)

    @app.job(max_attempts=1)
    def invoice(order: Order, due: datetime) -> dict[str, Any]:
        return {
            "order": type(order).__name__,
            "total": [type(order.total).__name__, str(order.total)],
            "placed": [type(order.placed).__name__, order.placed.isoformat()],
            "due": [type(due).__name__, due.isoformat()],
            "days": (due - order.placed).days,
        }

    return app


app = make_app()
