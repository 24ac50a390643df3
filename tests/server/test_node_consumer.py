"""The example Node consumer (examples/node-consumer) reads every event of a topic once, in
offset order per partition, as a member of a consumer group of a live `offload server` started
in a subprocess, with tokens. Skips when `node` is missing (fails so in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from offload import Offload

from ._live import free_port, skip_or_fail, wait_until

NODE = shutil.which("node")
CONSUMER = Path(__file__).resolve().parents[2] / "examples" / "node-consumer" / "consumer.mjs"
RUNNER = "worker-token-for-the-node-consumer-0002"
SERVE = "import sys; from offload.cli._server import server; server(sys.argv[1:])"


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    if NODE is None:
        skip_or_fail("node is not installed (the example needs Node 20+)")
    url = f"sqlite:///{tmp_path / 'node.db'}"
    app = Offload(url)
    orders = app.topic("orders", partitions=3)
    for start in range(0, 60, 20):
        orders.publish_many(range(start, start + 20), keys=[f"k{i}" for i in range(20)])
    app.close()
    tokens = tmp_path / "tokens"
    tokens.write_text(f"node:worker:{RUNNER}\n")
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
            url,
            "--port",
            str(port),
            "--tokens-file",
            str(tokens),
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


def test_node_consumer_reads_every_event_once_in_order(live_server: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OFFLOAD_SERVER": live_server,
        "OFFLOAD_TOKEN": RUNNER,
        "OFFLOAD_TOPIC": "orders",
        "OFFLOAD_GROUP": "js-analytics",
        "OFFLOAD_BATCH": "7",
        "OFFLOAD_MAX_EVENTS": "60",
        "OFFLOAD_IDLE_MS": "50",
    }
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(CONSUMER)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "stopped after 60 event(s)" in done.stderr
    seen: dict[int, list[int]] = {}
    payloads = []
    for line in done.stdout.splitlines():
        where, payload = line.split(" ", 1)
        part, offset = (int(x) for x in where.split(":"))
        seen.setdefault(part, []).append(offset)
        payloads.append(int(payload))
    assert sorted(payloads) == list(range(60))
    for offsets in seen.values():
        assert offsets == list(range(len(offsets)))
    with httpx2.Client(base_url=live_server, headers={"Authorization": f"Bearer {RUNNER}"}) as http:
        [topic] = http.get("/topics").json()["topics"]
        assert topic["groups"]["js-analytics"] == topic["heads"]  # committed up to every head
