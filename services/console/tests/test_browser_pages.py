"""Every page in each role's navigation opens without a server error and passes axe-core."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

pytestmark = pytest.mark.browser

Check = Callable[[Page, str], None]
Login = Callable[[Page, str], None]
USERS = [
    "hasselt.city_admin",
    "hasselt.market_master",
    "hasselt.trader",
    "hasselt.operator",
    "hasselt.driver",
    "hasselt.citizen",
    "geel.merchant",
    "geel.provider",
]


@pytest.mark.parametrize("username", USERS)
def test_every_page_of_the_role_opens_and_passes_the_accessibility_check(
    page: Page, login: Login, check: Check, username: str
) -> None:
    login(page, username)
    links = page.get_by_role("navigation", name="Hoofdnavigatie").get_by_role("link")
    paths = [href for href in (links.nth(i).get_attribute("href") for i in range(links.count())) if href]

    for path in paths:
        response = page.goto(path)
        assert response is not None
        assert response.status < 500, f"{path} answered {response.status}"
        check(page, f"{username}{path.replace('/', '-')}")


def test_pages_in_english_pass_the_accessibility_check_too(page: Page, login: Login, check: Check) -> None:
    login(page, "hasselt.city_admin")
    page.goto("/console/language/en?next=/console/kpis")

    assert page.locator("html").get_attribute("lang") == "en"
    check(page, "en-kpis")
