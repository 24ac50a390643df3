"""The jobs page's search and bulk actions in headless Chromium: typed searches narrow the list,
and retry, cancel and discard of a filtered set go through a confirmation page with the count.

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
from offload.store._bulk import JobMatch
from offload.store._contract import ClaimParams, Failure, NewJob

from ._live import browser, chromium_missing, serve, skip_or_fail, wait_until


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Offload]:
    """Three dead webhooks, two welcome mails waiting, and one for Ada."""
    reason = chromium_missing()
    if reason:
        skip_or_fail(reason)
    app = Offload(f"sqlite:///{tmp_path / 'shop.db'}")
    store = app.store
    store.migrate()
    hooks = [
        NewJob("deliver_webhook", "webhooks", {"url": f"https://h{i}.example"}) for i in (1, 2, 3)
    ]
    store.job_insert_many(hooks)
    claimed = store.job_claim(ClaimParams(["webhooks"], 3, "w", 60.0))
    store.job_fail_many([Failure(j.id, j.lease_token, "POST answered 503") for j in claimed])
    store.job_insert_many(
        [
            NewJob("send_welcome", "emails", {"user_id": 1, "name": "Grace"}),
            NewJob("send_welcome", "emails", {"user_id": 2, "name": "Ada Lovelace"}),
            NewJob("resize", "media", {"image_id": 9}),
        ]
    )
    yield app
    app.close()


def _click(driver: Any, element: Any) -> None:
    """Click something that loads a page, and wait until the page it was on is gone."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def gone() -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale, or "does not belong to the document" mid-navigation
            return True
        return False

    wait_until(gone, what="the next page")


def _rows(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")]


def _errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _search(driver: Any, **fields: str) -> None:
    from selenium.webdriver.common.by import By

    for name, text in fields.items():
        box = driver.find_element(By.NAME, name)
        box.clear()
        box.send_keys(text)
    _click(driver, driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))


def _searches(driver: Any, base: str) -> None:
    """Typed searches by argument text, error text and kind narrow the jobs page."""
    from selenium.webdriver.common.by import By

    driver.get(base + "/ui/jobs")
    assert len(_rows(driver)) == 6
    _search(driver, args="lovelace")
    rows = wait_until(lambda: len(_rows(driver)) == 1 and _rows(driver), what="one row")
    assert "send_welcome" in rows[0]
    assert driver.find_element(By.NAME, "args").get_attribute("value") == "lovelace"
    _search(driver, args="", error="ANSWERED 503")
    wait_until(lambda: len(_rows(driver)) == 3, what="the dead webhooks")
    assert all("deliver_webhook" in r and "dead" in r for r in _rows(driver))
    _search(driver, error="", kind="resize")
    wait_until(lambda: len(_rows(driver)) == 1, what="the resize job")
    assert "resize" in _rows(driver)[0]
    _search(driver, kind="", args="no such text")
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "p.empty"), what="no match")


def _bulk(driver: Any, action: str) -> str:
    """Press a bulk button of the jobs page; the confirmation page's count text."""
    from selenium.webdriver.common.by import By

    _click(driver, driver.find_element(By.CSS_SELECTOR, f"#bulk a[data-bulk={action}]"))
    count = wait_until(
        lambda: driver.find_elements(By.ID, "bulk-count"), what="the confirmation page"
    )
    return str(count[0].text)


def _flash(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(wait_until(lambda: driver.find_elements(By.ID, "bulk-done"), what="flash")[0].text)


def test_search_then_bulk_retry_cancel_and_discard(shop: Offload, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    store = shop.store

    def states(kind: str) -> list[str]:
        return sorted(r.state for r in store.job_search(JobMatch(kind=kind), 100))

    with serve(create_app(shop)) as base, browser(tmp_path / "profile") as driver:
        # Live updates off (the dashboard keeps the choice): the test changes jobs and must not
        # hold an element of a page the live feed swaps meanwhile.
        driver.get(base + "/ui/jobs")
        driver.execute_script("window.localStorage.setItem('offload.live', '0')")
        _searches(driver, base)
        driver.get(base + "/ui/jobs?state=dead")
        assert _bulk(driver, "retry") == "3"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#bulk-sample tbody tr")) == 3
        _click(driver, driver.find_element(By.ID, "bulk-back"))  # thought better of it
        wait_until(lambda: driver.find_elements(By.ID, "bulk"), what="the jobs page")
        assert states("deliver_webhook") == ["dead"] * 3
        assert _bulk(driver, "retry") == "3"
        _click(driver, driver.find_element(By.ID, "bulk-go"))
        assert _flash(driver) == "3 jobs retried."
        assert states("deliver_webhook") == ["available"] * 3

        driver.get(base + "/ui/jobs?queue=emails")
        assert _bulk(driver, "cancel") == "2"
        _click(driver, driver.find_element(By.ID, "bulk-go"))
        assert _flash(driver) == "2 jobs cancelled."
        assert states("send_welcome") == ["cancelled"] * 2

        driver.get(base + "/ui/jobs")
        _search(driver, args="example")
        wait_until(lambda: len(_rows(driver)) == 3, what="the webhooks")
        assert _bulk(driver, "discard") == "3"
        _click(driver, driver.find_element(By.ID, "bulk-go"))
        assert _flash(driver) == "3 jobs discarded."
        assert states("deliver_webhook") == []
        assert states("resize") == ["available"]
        assert _errors(driver) == []
