"""The example Node worker (examples/node-worker) runs 100 jobs to completion against a live
`offload server` started in a subprocess, with tokens. Skips when `node` is missing (fails so
in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from ._live import free_port, skip_or_fail, wait_until

NODE = shutil.which("node")
WORKER = Path(__file__).resolve().parents[2] / "examples" / "node-worker" / "worker.mjs"
ADMIN = "admin-token-for-the-node-test-0001"
RUNNER = "worker-token-for-the-node-test-0002"
SERVE = "import sys; from offload.cli._server import server; server(sys.argv[1:])"


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    if NODE is None:
        skip_or_fail("node is not installed (the example needs Node 20+)")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops:admin:{ADMIN}\nnode:worker:{RUNNER}\n")
    tokens.chmod(0o600)
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "OFFLOAD_TOKENS"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVE,
            "--url",
            f"sqlite:///{tmp_path / 'node.db'}",
            "--port",
            str(port),
            "--tokens-file",
            str(tokens),
            "--external-kind",
            "js.add=node",
            "--max-wait",
            "5",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        try:
            return httpx2.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx2.TransportError:
            return False

    try:
        wait_until(up, timeout=30, what="offload server to answer")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_node_worker_runs_100_jobs(live_server: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx2.Client(base_url=live_server, headers=admin, timeout=10) as http:
        ids = []
        for i in range(100):
            r = http.post("/jobs", json={"kind": "js.add", "args": {"a": i, "b": 1000}})
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        env = {
            "PATH": os.environ.get("PATH", ""),
            "OFFLOAD_SERVER": live_server,
            "OFFLOAD_TOKEN": RUNNER,
            "OFFLOAD_QUEUES": "node",
            "OFFLOAD_CONCURRENCY": "8",
            "OFFLOAD_MAX_JOBS": "100",
            "OFFLOAD_WAIT": "1",
        }
        assert NODE is not None
        done = subprocess.run(
            [NODE, str(WORKER)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "stopped after 100 job(s)" in done.stderr
        page = http.get("/jobs", params={"kind": "js.add", "limit": 500}).json()
        assert {j["state"] for j in page["jobs"]} == {"completed"}
        assert len(page["jobs"]) == 100
        for i, job_id in enumerate(ids):
            result = http.get(f"/jobs/{job_id}/result").json()["result"]
            assert result == {"sum": i + 1000}
        # the worker said goodbye: it is no longer listed as alive
        queues = {q["name"]: q for q in http.get("/queues").json()["queues"]}
        assert queues["node"]["counts"]["completed"] == 100 and queues["node"]["workers"] == 0
