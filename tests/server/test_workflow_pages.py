"""What operators see of workflows and correlation through the server: a stuck saga on the
overview and in the metrics, and a job page that links the job that enqueued it, its root and
the tree of jobs the root caused."""

from __future__ import annotations

import offload
from offload import Offload, Step
from offload.testing import drain

from ._helpers import MakeClient


def test_a_stuck_saga_shows_on_the_overview_and_in_the_metrics(
    app: Offload, make_client: MakeClient
) -> None:
    @app.job(max_attempts=1)
    def book(n: int) -> None:
        raise RuntimeError("no rooms")

    @app.job()
    def hold(n: int) -> None:
        return None

    @app.job(max_attempts=1)
    def release(n: int) -> None:
        raise RuntimeError("release failed")

    saga = app.saga([Step(hold.prepare(1), undo=release.prepare(1)), Step(book.prepare(1))])
    wf = saga.enqueue()
    drain(app)
    assert wf.refresh().state == "stuck"
    client = make_client(app)
    overview = client.get("/").text
    assert 'id="stuck"' in overview and f"workflow #{wf.id}" in overview
    metrics = client.get("/metrics").text
    assert 'offload_workflows{state="stuck"} 1.0' in metrics


def test_a_job_page_links_its_parent_its_root_and_shows_the_tree(
    app: Offload, make_client: MakeClient
) -> None:
    @app.job()
    def leaf() -> None:
        return None

    @app.job()
    def middle() -> None:
        leaf.enqueue()

    @app.job()
    def top() -> None:
        middle.enqueue()
        app.chain(leaf.prepare()).enqueue()

    root = top.enqueue()
    drain(app)
    jobs = {j.id: j for j in (app.get_job(i) for i in range(root.id, root.id + 4))}
    [mid] = [j for j in jobs.values() if j.kind == "middle"]
    [grandchild] = [j for j in jobs.values() if j.parent_id == mid.id]
    assert (grandchild.root_id, mid.root_id, mid.parent_id) == (root.id, root.id, root.id)
    client = make_client(app)
    page = client.get(f"/ui/jobs/{grandchild.id}").text
    assert f'id="parent" href="/ui/jobs/{mid.id}"' in page
    assert f'id="root" href="/ui/jobs/{root.id}"' in page
    tree = page[page.index('id="tree"') :]
    assert all(f"#{i}" in tree for i in jobs)
    listed = client.get("/jobs", params={"kind": "leaf", "limit": 10}).json()["jobs"]
    [body] = [j for j in listed if j["id"] == grandchild.id]
    assert (body["parent_id"], body["root_id"]) == (mid.id, root.id)
    assert body["links"]["parent"] == f"/jobs/{mid.id}"
    step_job = [j for j in jobs.values() if j.kind == "leaf" and j.parent_id == root.id][0]
    assert 'id="workflow"' in client.get(f"/ui/jobs/{step_job.id}").text
    assert offload.WorkflowHandle  # exported
