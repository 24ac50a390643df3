"""The application `offload demo` runs: a small web shop's background work.

Worker processes import it as `offload.cli._demo_app:app` and get the demo's store with
`--url`. Leases and maintenance are short so that retries and cron show up within seconds.
Importing this module connects to nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter
from typing import Any

from offload import Offload

app = Offload(lease_seconds=5.0, maintenance_interval=0.2)  # its store: `offload demo --url`

QUEUES = ("emails", "media", "webhooks", "billing", "reports")
CRON = "* * * * * */2"  # every 2 seconds (six fields, seconds last)
CRON_KIND = "refresh_dashboard"
CRON_QUEUE = "reports"


@app.job(queue="emails", max_attempts=5, backoff=0.2)
def send_signup_email(user_id: int, email: str) -> dict[str, Any]:
    """Send a new user's welcome email (a few milliseconds of pretend SMTP)."""
    time.sleep(random.uniform(0.003, 0.015))
    return {"to": email, "template": "welcome", "user_id": user_id}


@app.job(queue="media")
async def make_thumbnail(image_id: int, width: int = 320) -> dict[str, Any]:
    """Resize an uploaded image (async: the event loop keeps other thumbnails going)."""
    await asyncio.sleep(random.uniform(0.002, 0.010))
    return {"image_id": image_id, "thumbnail": f"thumbs/{image_id}-{width}.webp"}


STATE_ENV = "OFFLOAD_DEMO_STATE"
_calls: Counter[int] = Counter()
_calls_lock = threading.Lock()


def _endpoint_drops(delivery_id: int) -> bool:
    """Whether the partner's endpoint drops this call: the first `delivery_id % 3` calls of
    each delivery are dropped.

    The demo gives its workers a shared folder (`$OFFLOAD_DEMO_STATE`) where each dropped call
    leaves a marker, so the count holds across processes; without it, it is counted per
    process.
    """
    drops = delivery_id % 3
    folder = os.environ.get(STATE_ENV)
    if folder is None:
        with _calls_lock:
            _calls[delivery_id] += 1
            return _calls[delivery_id] <= drops
    for n in range(drops):
        marker = os.path.join(folder, f"webhook-{delivery_id}-{n}")
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return True
    return False


@app.job(queue="webhooks", max_attempts=5, backoff=0.2)
def deliver_webhook(delivery_id: int, endpoint: str, event: str) -> dict[str, Any]:
    """POST an event to a partner whose endpoint drops the first call or two of some
    deliveries: those fail with ConnectionError and succeed on a retry, well within their
    5 attempts."""
    if _endpoint_drops(delivery_id):
        raise ConnectionError(f"{endpoint}: connection reset by peer")
    time.sleep(random.uniform(0.002, 0.008))
    return {"delivered": event, "status": 200}


@app.job(queue="billing", max_attempts=3, backoff=0.2)
def import_invoice(invoice_id: int) -> None:
    """Import an invoice from the old billing system; this one is broken and ends dead."""
    raise ValueError(f"invoice {invoice_id} references customer 'cus_0000', which does not exist")


@app.job(queue=CRON_QUEUE, cron=CRON)
def refresh_dashboard() -> dict[str, Any]:
    """Recompute the dashboard's numbers, every two seconds."""
    return {"refreshed_at": time.time()}
