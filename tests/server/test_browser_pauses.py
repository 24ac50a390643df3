"""Pause and resume buttons of queues and kinds in headless Chromium: a click (confirmed) pauses,
the badge shows it on the queues page and the overview, and Resume takes it back.

Skips when Debian's chromium and chromium-driver are not installed, and fails so in CI
(`CI=true`), which installs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offload import Offload
from offload.server import create_app
from offload.store._contract import NewJob

from ._live import browser, chromium_missing, serve, skip_or_fail, wait_until


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Offload]:
    reason = chromium_missing()
    if reason:
        skip_or_fail(reason)
    app = Offload(f"sqlite:///{tmp_path / 'shop.db'}")

    @app.job(queue="emails")
    def send_welcome(user_id: int) -> None:
        return None

    app.store.migrate()
    app.store.job_insert_many([NewJob("send_welcome", "emails", {"user_id": 1})])
    yield app
    app.close()


def _errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _paused(app: Offload) -> list[tuple[str, str]]:
    return [(p.scope, p.name) for p in app.store.pause_list()]


def test_pause_and_resume_with_a_click(shop: Offload, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with serve(create_app(shop)) as base, browser(tmp_path / "profile") as driver:
        # Live updates off (the dashboard keeps the choice): the test must not hold a button of
        # a page the live feed swaps after each pause.
        driver.get(f"{base}/ui/queues")
        driver.execute_script("window.localStorage.setItem('offload.live', '0')")
        driver.get(f"{base}/ui/queues")
        driver.find_element(By.CSS_SELECTOR, "button[data-pause='queues:emails']").click()
        driver.switch_to.alert.dismiss()  # thought better of it: nothing happens
        assert _paused(shop) == []
        driver.find_element(By.CSS_SELECTOR, "button[data-pause='queues:emails']").click()
        driver.switch_to.alert.accept()
        wait_until(lambda: _paused(shop) == [("queue", "emails")], what="the queue paused")

        def badge_shown() -> bool:
            cells = driver.find_elements(
                By.XPATH, "//td[a[text()='emails']]/span[@class='badge paused']"
            )
            return bool(cells)

        wait_until(badge_shown, what="the paused badge on the queues page")
        button = driver.find_element(By.CSS_SELECTOR, "button[data-pause='queues:emails']")
        assert button.text == "Resume"

        driver.find_element(By.CSS_SELECTOR, "button[data-pause='kinds:send_welcome']").click()
        driver.switch_to.alert.accept()
        wait_until(lambda: ("kind", "send_welcome") in _paused(shop), what="the kind paused")
        driver.get(f"{base}/")
        assert driver.find_elements(By.CSS_SELECTOR, "td .badge.paused")
        driver.find_element(By.CSS_SELECTOR, "button[data-pause='queues:emails']").click()
        wait_until(lambda: _paused(shop) == [("kind", "send_welcome")], what="the queue resumed")
        assert _errors(driver) == []
