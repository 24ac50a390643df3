"""The dashboard's operator features in headless Chromium: live updates by Server-Sent Events
(no reload), HTML error pages, links under a sub-path, and the blackhole rules page.

Skips when Debian's chromium and chromium-driver are not installed, and fails so in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from offload import Offload
from offload.server import create_app

from ._live import browser, chromium_missing, serve, skip_or_fail, wait_until


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Offload]:
    reason = chromium_missing()
    if reason:
        skip_or_fail(reason)
    app = Offload(f"sqlite:///{tmp_path / 'shop.db'}")

    @app.job(queue="imports")
    def import_rows(customer_id: int) -> None:
        """Never run here: the tests look at queued jobs."""

    yield app
    app.close()


def _severe(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


KPI = """
for (const kpi of document.querySelectorAll(".kpi")) {
  if (kpi.querySelector(".label").textContent === arguments[0]) {
    return kpi.querySelector(".value").textContent;
  }
}
return null;
"""


def _heading(driver: Any) -> str:
    """The page's h1 text, or "" while the next page is still loading."""
    return str(
        driver.execute_script("var h = document.querySelector('h1'); return h ? h.textContent : ''")
    )


def _kpi(driver: Any, label: str) -> str | None:
    """A KPI's value, read in one script (the page may swap its content at any moment)."""
    value = driver.execute_script(KPI, label)
    return None if value is None else str(value)


def test_the_overview_updates_live_without_a_reload(shop: Offload, tmp_path: Path) -> None:
    with serve(create_app(shop)) as base, browser(tmp_path / "profile") as driver:
        driver.get(base + "/")
        wait_until(
            lambda: driver.execute_script("return document.body.dataset.live") == "connected",
            what="the event stream to connect",
        )
        assert _kpi(driver, "Ready to run") == "0"
        driver.execute_script("window.stillThisPage = true")
        for n in range(3):
            shop.enqueue("import_rows", n)
        wait_until(lambda: _kpi(driver, "Ready to run") == "3", what="the count to update")
        assert driver.execute_script("return window.stillThisPage === true")  # not reloaded
        assert int(driver.execute_script("return document.body.dataset.updated")) >= 1
        # turned off, the page stays as it is
        driver.find_element("id", "live").click()
        assert driver.execute_script("return document.body.dataset.live") == "off"
        assert _severe(driver) == []


def test_errors_are_pages_with_a_way_back(shop: Offload, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with serve(create_app(shop)) as base, browser(tmp_path / "profile") as driver:
        driver.get(base + "/ui/jobs/424242")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Job not found"
        assert "job 424242 does not exist" in driver.find_element(By.ID, "error").text
        driver.find_element(By.LINK_TEXT, "Back to the overview").click()
        wait_until(
            lambda: _heading(driver) == "Overview",
            what="the overview",
        )
        driver.get(base + "/ui/nothing-here")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Not found"
        driver.get(base + "/jobs/424242")  # the API answers JSON, even to a browser
        assert '"/problems/job-not-found"' in driver.find_element(By.TAG_NAME, "body").text


def test_every_link_works_under_a_sub_path(shop: Offload, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    shop.enqueue("import_rows", 1)
    outer = Starlette(routes=[Mount("/ops/offload", app=create_app(shop))])
    with serve(outer) as base, browser(tmp_path / "profile") as driver:
        driver.get(base + "/ops/offload/")
        assert driver.execute_script("return document.styleSheets.length") >= 1
        wait_until(
            lambda: driver.execute_script("return document.body.dataset.live") == "connected",
            what="the event stream under the sub-path",
        )
        for label, heading in (("Jobs", "Jobs"), ("Queues", "Queues"), ("Rules", "Blackhole")):
            driver.find_element(By.LINK_TEXT, label).click()
            wait_until(
                lambda: _heading(driver).startswith(heading),
                what=f"the {label} page",
            )
            assert driver.current_url.startswith(base + "/ops/offload/ui/")
        driver.find_element(By.LINK_TEXT, "Jobs").click()
        driver.find_element(By.CSS_SELECTOR, "#jobs tbody a").click()
        assert driver.current_url.startswith(base + "/ops/offload/ui/jobs/")
        driver.find_element(By.CSS_SELECTOR, "a.brand").click()
        assert driver.current_url == base + "/ops/offload/"
        assert _severe(driver) == []


def test_add_a_rule_after_its_preview_and_remove_it(shop: Offload, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    for customer in (7, 7, 8):
        shop.enqueue("import_rows", customer)
    with serve(create_app(shop)) as base, browser(tmp_path / "profile") as driver:
        driver.get(base + "/ui/rules")
        assert "No rules" in driver.find_element(By.TAG_NAME, "main").text
        assert driver.find_elements(By.ID, "add") == []  # preview first
        driver.find_element(By.NAME, "kind").send_keys("import_rows")
        driver.find_element(By.NAME, "where").send_keys("args.customer_id == 7")
        driver.find_element(By.NAME, "reason").send_keys("customer 7 floods us")
        driver.find_element(By.ID, "preview-rule").click()
        first = wait_until(lambda: driver.find_elements(By.ID, "preview"), what="the preview")
        assert first[0].text.startswith("2 queued jobs match")

        reason = driver.find_element(By.NAME, "reason")
        reason.send_keys("!")  # a changed rule must be previewed again
        assert driver.find_elements(By.ID, "add") == []
        reason.send_keys(Keys.BACKSPACE)
        driver.find_element(By.ID, "preview-rule").click()
        again = wait_until(lambda: driver.find_elements(By.ID, "preview"), what="the preview")
        assert again[0].text.startswith("2 queued jobs match")
        driver.find_element(By.ID, "add").click()
        driver.switch_to.alert.accept()
        flash = wait_until(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".flash"), what="the rule's page"
        )
        (rule,) = shop.rules.list()
        assert flash[0].text == f"Rule #{rule.id} added."
        assert (rule.kind, rule.where, rule.reason) == (
            "import_rows",
            "args.customer_id == 7",
            "customer 7 floods us",
        )
        row = driver.find_element(By.ID, f"rule-{rule.id}")
        assert "args.customer_id == 7" in row.text

        row.find_element(By.CSS_SELECTOR, "button[data-action=remove]").click()
        driver.switch_to.alert.dismiss()  # thought better of it
        assert shop.rules.list() == [rule]
        driver.find_element(By.CSS_SELECTOR, "button[data-action=remove]").click()
        driver.switch_to.alert.accept()
        flash = wait_until(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".flash"), what="the removal"
        )
        assert flash[0].text == f"Rule #{rule.id} removed."
        assert shop.rules.list() == []
        assert _severe(driver) == []
