"""The fault app with one more job type for churn tests (catalogue H1, H3): `quiet`, which
does nothing and writes no ledger line, for the jobs of a million-job run beyond the ledger's
sample (every ledger `end` is an fsync). Workers import it as `tests.faults.churnapp:app`."""

from __future__ import annotations

from offload import Offload

from .faultapp import make_app as make_fault_app


def make_app(url: str | None = None) -> Offload:
    app = make_fault_app(url)

    @app.job()
    def quiet(key: str) -> None:
        """Nothing: its row's state and the store's totals say whether it ran."""

    return app


app = make_app()
