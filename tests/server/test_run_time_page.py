"""The dashboard's run-time page: long-running, non-interruptible job types with their worst and
typical durations, owner and ordering, from the store's run-time reports."""

from __future__ import annotations

from offload import Offload
from offload.store._runtime import RunTimeReport

from ._helpers import MakeClient


def test_the_page_lists_reported_kinds_with_owner_and_durations(
    app: Offload, make_client: MakeClient
) -> None:
    client = make_client(app)
    assert "No job type has run past its max run time" in client.get("/ui/run-time").text
    app.store.kind_runtime_add(
        [
            RunTimeReport("nightly<export>", "batch", "data-team", 60.0, 2, 300.0, 200.0, 0.0),
            RunTimeReport(
                "search_sync",
                "default",
                blocks=1,
                blocked_seconds=0.8,
                worst_block=0.8,
                block_age=0.0,
            ),
        ]
    )
    page = client.get("/ui/run-time").text
    assert 'href="/ui/run-time"' in client.get("/").text  # in the navigation of every page
    row = page[page.index("nightly&lt;export&gt;") :].split("</tr>")[0]  # escaped
    assert "data-team" in row and "deprioritized" in row
    assert "1 min" in row  # max run time 60 s
    assert "3.3 min" in row or "3 min" in row  # worst 200 s
    assert "2 min" in row or "2.5 min" in row  # typical: 300 s over 2 overruns
    block = page[page.index("search_sync") :].split("</tr>")[0]
    assert "1 (worst 800 ms)" in block
