"""City admins in a real browser: login, the ops console, the live feed, dead letters, the language switch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded

pytestmark = pytest.mark.browser

Check = Callable[[Page, str], None]
Login = Callable[[Page, str], None]


def test_the_platform_home_leads_to_the_console_login(page: Page, check: Check) -> None:
    page.goto("/")
    page.get_by_role("link", name="Aanmelden").first.click()

    expect(page.get_by_role("heading", name="Aanmelden bij CityBlocks")).to_be_visible()
    check(page, "login")


def test_a_city_admin_sees_the_health_of_every_service(page: Page, login: Login, check: Check) -> None:
    login(page, "hasselt.city_admin")
    page.get_by_role("navigation", name="Hoofdnavigatie").get_by_role("link", name="Operaties").click()

    expect(page.get_by_role("heading", name="Gezondheid van de diensten")).to_be_visible()
    expect(page.locator('tr[data-service="console"]')).to_contain_text("gereed")
    check(page, "ops-health")


def test_the_live_feed_shows_a_new_event_without_reloading(
    page: Page, login: Login, check: Check, live_platform: object
) -> None:
    login(page, "hasselt.city_admin")
    page.goto("/console/ops/feed")
    expect(page.get_by_role("status").first).to_have_text("Verbonden")

    envelope = Envelope.wrap(
        ProbeRecorded(stream="browser-live", seq=1), source="/tests", tenant="71022", subject="browser-live"
    )
    live_platform.run(live_platform.app.state.bus.publish([envelope]))  # type: ignore[attr-defined]

    expect(page.locator(".events li").first).to_contain_text("ProbeRecorded")
    expect(page.locator(".events li").first).to_contain_text("browser-live")
    check(page, "ops-feed")


def test_the_dead_letter_page_is_reachable_by_keyboard(page: Page, login: Login, check: Check) -> None:
    login(page, "geel.city_admin")
    page.goto("/console/ops")
    page.get_by_role("link", name="Dode brieven").last.focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Dode brieven")).to_be_visible()
    check(page, "ops-dead-letters")


def test_the_console_switches_to_english_and_back(page: Page, login: Login, check: Check) -> None:
    login(page, "hasselt.city_admin")
    page.get_by_role("link", name="English").click()

    expect(page.get_by_role("heading", name="Your pages")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"
    check(page, "home-english")
    page.get_by_role("link", name="Nederlands").click()
    expect(page.get_by_role("heading", name="Uw pagina's")).to_be_visible()
