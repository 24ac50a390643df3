"""Arguments of richer types over HTTP, on every engine: the producer sends their JSON form, the
server checks it with the job type's own model and stores it as JSON, and refuses what does not
fit with an `invalid-arguments` problem naming the place (docs/typing.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from offload import Offload

from ._helpers import MakeClient, assert_problem


@dataclass
class Line:
    sku: str
    price: Decimal


def test_the_server_checks_rich_arguments_with_the_job_types_model(
    app: Offload, make_client: MakeClient
) -> None:
    @app.job(queue="typed")
    def bill(line: Line, due: datetime) -> None: ...

    client = make_client(app)
    args = {"line": {"sku": "A-1", "price": "9.50"}, "due": "2030-01-02T03:04:05Z"}
    ok = client.post("/jobs", json={"kind": "bill", "args": args})
    assert ok.status_code == 202, ok.text
    assert ok.json()["args"] == args

    bad = {**args, "line": {"sku": "A-1", "price": "lots"}}
    problem = assert_problem(
        client.post("/jobs", json={"kind": "bill", "args": bad}), 422, "invalid-arguments"
    )
    assert problem["argument"] == "line"
    assert "should be Line, got dict" in problem["detail"]
    late = {**args, "due": "tomorrow"}
    problem = assert_problem(
        client.post("/jobs", json={"kind": "bill", "args": late}), 422, "invalid-arguments"
    )
    assert problem["argument"] == "due"
