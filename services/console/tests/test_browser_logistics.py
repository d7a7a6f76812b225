"""The logistics journey in a browser: an operator plans, a driver completes a stop, the feed shows it."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

Check = Callable[[Page, str], None]
Login = Callable[[Page, str], None]
OpenPage = Callable[..., Page]
PLANNING_TIMEOUT_MS = 90_000


@pytest.fixture(autouse=True)
def _logistics_is_mounted(mounted: set[str]) -> None:
    if "logistics" not in mounted:
        pytest.skip("the logistics service is not mounted in this platform")


def test_an_operator_plans_routes_a_driver_completes_a_stop_and_the_console_shows_it_live(
    open_page: OpenPage, login: Login, check: Check
) -> None:
    operator = open_page()
    login(operator, "hasselt.operator")
    operator.get_by_role("navigation", name="Hoofdnavigatie").get_by_role("link", name="Bestellingen").click()
    expect(operator.get_by_role("heading", name=re.compile("bestellingen"))).to_be_visible()
    check(operator, "operator-orders")
    operator.get_by_label("Rekentijd (seconden)").fill("3")
    operator.get_by_role("button", name="Plannen").click()
    expect(operator.get_by_role("progressbar", name="Voortgang")).to_be_visible()
    expect(operator.get_by_role("button", name="Naar de chauffeurs sturen")).to_be_visible(
        timeout=PLANNING_TIMEOUT_MS
    )
    expect(operator.locator(".leaflet-overlay-pane path").first).to_be_attached()
    check(operator, "operator-planning-run")
    operator.get_by_role("button", name="Naar de chauffeurs sturen").click()
    expect(operator.get_by_role("status").first).to_have_text("De routes zijn naar de chauffeurs gestuurd.")
    expect(operator.locator(".feed-state")).to_have_text("Verbonden")

    driver = open_page(mobile=True)
    login(driver, "hasselt.driver")
    driver.get_by_role("link", name="Mijn route").first.click()
    if driver.get_by_role("heading", name="Mijn route", exact=True).is_visible():
        driver.locator("main a[href*='/driver/routes/']").first.click()
    expect(driver.locator("li.stop").first).to_be_visible()
    check(driver, "driver-route")
    driver.locator("li.stop.planned").first.get_by_role("button", name=re.compile("^Geleverd")).click()
    expect(driver.get_by_role("status").first).to_contain_text("is geleverd")
    expect(driver.locator("li.stop.done").first).to_contain_text("geleverd")
    next_stop = driver.locator("li.stop.planned").first
    next_stop.get_by_label("Reden").select_option("no_access")
    next_stop.get_by_role("button", name=re.compile("^Mislukt")).click()
    expect(driver.get_by_role("status").first).to_contain_text("als mislukt gemeld")
    expect(driver.locator("li.stop.failed").first).to_contain_text("geen toegang")

    expect(operator.locator(".events li", has_text="StopCompleted").first).to_be_visible(timeout=15_000)
    expect(operator.locator("table.routes")).to_contain_text("✔ 1 · ✖ 1")
    check(operator, "operator-live-stop-completed")
