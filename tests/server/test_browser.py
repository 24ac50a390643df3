"""The dashboard in headless Chromium: every page loads without console errors (a CSP
violation is one), and a dead job is retried with a click and completes on a real worker.

Skips when Debian's chromium and chromium-driver are not installed, and fails so in CI
(`CI=true`), which installs them.
Set OFFLOAD_SCREENSHOT=1 to refresh docs/dashboard.png from the overview.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offload import Offload
from offload.server import create_app
from offload.store._contract import JobFilter
from offload.worker import Worker

from ._live import browser, chromium_missing, serve, skip_or_fail, wait_until
from ._seed import demo_app, seed_history

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = {
    "/": "Overview",
    "/?range=24h": "Overview",
    "/ui/jobs": "Jobs",
    "/ui/jobs?state=dead": "Jobs",
    "/ui/queues": "Queues",
    "/ui/schedules": "Cron schedules",
    "/ui/workers": "Workers",
    "/ui/run-time": "Long-running",
}


def _errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Offload]:
    reason = chromium_missing()
    if reason:
        skip_or_fail(reason)
    app = demo_app(f"sqlite:///{tmp_path / 'demo.db'}")
    seed_history(app)
    yield app
    app.close()


def test_every_page_loads_cleanly(demo: Offload, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with serve(create_app(demo)) as base, browser(tmp_path / "profile") as driver:
        for path, heading in PAGES.items():
            driver.get(base + path)
            assert driver.find_element(By.TAG_NAME, "h1").text.startswith(heading), path
            assert _errors(driver) == [], path
        driver.get(base + "/ui/jobs?state=dead")
        driver.find_element(By.CSS_SELECTOR, "#jobs tbody a").click()
        assert driver.find_element(By.CSS_SELECTOR, "pre#args").text.startswith("{")
        assert "answered 503" in driver.find_element(By.CSS_SELECTOR, "details.error-entry").text
        assert _errors(driver) == []
        driver.get(base + "/")
        target = (
            DOCS / "dashboard.png"
            if os.environ.get("OFFLOAD_SCREENSHOT")
            else tmp_path / "overview.png"
        )
        driver.set_window_size(1360, 1400)
        assert driver.save_screenshot(str(target)) and target.stat().st_size > 10_000


def test_retry_a_dead_job_with_a_click(tmp_path: Path) -> None:
    reason = chromium_missing()
    if reason:
        skip_or_fail(reason)
    from selenium.webdriver.common.by import By

    app = Offload(f"sqlite:///{tmp_path / 'retry.db'}", maintenance_interval=0.1)
    first_run = tmp_path / "failed-once"

    @app.job(max_attempts=1)
    def flaky(n: int) -> int:
        if not first_run.exists():
            first_run.touch()
            raise RuntimeError("the first run fails")
        return n * 2

    worker = Worker(app, ["default"], 2, poll_interval=0.05, maintenance=True)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        job = flaky.enqueue(21)
        wait_until(lambda: job.refresh().state == "dead", what="the job to die")
        with serve(create_app(app)) as base, browser(tmp_path / "profile") as driver:
            driver.get(f"{base}/ui/jobs/{job.id}")
            badge = driver.find_element(By.CSS_SELECTOR, "h1 .badge")
            assert badge.text == "dead"
            driver.find_element(By.ID, "retry").click()
            flash = wait_until(
                lambda: driver.find_elements(By.CSS_SELECTOR, ".flash"), what="the page after"
            )
            assert flash[0].text == "Job retried."

            def completed() -> bool:
                driver.refresh()
                return driver.find_element(By.CSS_SELECTOR, "h1 .badge").text == "completed"

            wait_until(completed, what="the retried job to complete")
            assert driver.find_element(By.ID, "result").text == "42"
            assert _errors(driver) == []
    finally:
        worker.stop()
        thread.join(30)
        app.close()


def test_discard_jobs_with_a_click(demo: Offload, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    dead = [r.id for r in demo.store.job_list(JobFilter(states=["dead"], limit=2))]
    with serve(create_app(demo)) as base, browser(tmp_path / "profile") as driver:
        driver.get(f"{base}/ui/jobs/{dead[0]}")
        driver.find_element(By.ID, "discard").click()
        driver.switch_to.alert.accept()  # "Discard job #…? It is deleted."
        flash = wait_until(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".flash"), what="the jobs browser"
        )
        assert flash[0].text == f"Job #{dead[0]} discarded."
        assert demo.store.job_get(dead[0]) is None

        driver.get(f"{base}/ui/jobs?state=dead")
        row = driver.find_element(By.XPATH, f"//tr[td/a[@href='/ui/jobs/{dead[1]}']]")
        row.find_element(By.CSS_SELECTOR, "button[data-action=discard]").click()
        driver.switch_to.alert.dismiss()  # thought better of it: nothing happens
        assert demo.store.job_get(dead[1]) is not None
        row = driver.find_element(By.XPATH, f"//tr[td/a[@href='/ui/jobs/{dead[1]}']]")
        row.find_element(By.CSS_SELECTOR, "button[data-action=discard]").click()
        driver.switch_to.alert.accept()
        flash = wait_until(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".flash"), what="the jobs browser"
        )
        assert flash[0].text == f"Job #{dead[1]} discarded."
        assert demo.store.job_get(dead[1]) is None
        assert _errors(driver) == []
