"""Market journey in a browser: a trader applies on the plan, the master allocates, the trader checks in."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

Check = Callable[[Page, str], None]
Login = Callable[[Page, str], None]
OpenPage = Callable[..., Page]


@pytest.fixture(autouse=True)
def _market_is_mounted(mounted: set[str]) -> None:
    if "market" not in mounted:
        pytest.skip("the market service is not mounted in this platform")


def test_a_trader_applies_an_admin_allocates_and_the_trader_sees_the_stall(
    open_page: OpenPage, login: Login, check: Check
) -> None:
    trader = open_page(mobile=True)
    login(trader, "hasselt.trader2")
    trader.get_by_role("link", name="Mijn markten").first.click()
    check(trader, "trader-markets")
    trader.get_by_role("link", name=re.compile("^Plaats aanvragen")).first.click()
    day_url = trader.url
    trader.locator('g.stall[data-stall="C3"]').click()
    trader.locator('g.stall[data-stall="C4"]').click()
    expect(trader.get_by_role("status").first).to_have_text("Uw keuze: C3, C4")
    trader.get_by_label("Maximum aantal plaatsen").fill("2")
    check(trader, "trader-apply")
    trader.get_by_role("button", name="Aanvraag versturen").click()
    expect(trader.get_by_role("status").first).to_have_text("Uw aanvraag is verstuurd.")
    expect(trader.get_by_role("region", name="Mijn aanvragen")).to_contain_text("C3, C4")

    master = open_page()
    login(master, "hasselt.market_master")
    market_id, day_id = re.findall(r"/markets/([^/]+)/days/([^/]+)/apply", day_url)[0]
    master.goto(f"/console/markets/{market_id}/days/{day_id}")
    master.get_by_label("Definitief (publiceren)").check()
    master.get_by_role("button", name="Toewijzing uitvoeren").click()
    expect(master.get_by_role("status").first).to_contain_text("Toewijzing klaar")
    expect(master.locator(".market-plan .stall.taken").first).to_be_visible()
    check(master, "master-allocation")

    trader.reload()
    outcome = trader.get_by_role("region", name="Mijn standplaatsen")
    expect(outcome).to_contain_text("Standplaatsen")
    outcome.get_by_role("link", name=re.compile("Inchecken")).first.click()
    expect(trader.get_by_role("img", name="Inchecken (QR-code)")).to_be_visible()
    expect(trader.locator(".market-plan .stall.own").first).to_be_visible()
    check(trader, "trader-assignment-qr")
    token = (trader.locator("code.payload").text_content() or "").strip()
    master.get_by_label("Incheckcode van de kramer").fill(token)
    master.get_by_role("button", name="Inchecken", exact=True).click()
    expect(master.get_by_role("status").first).to_contain_text("is ingecheckt op")
    trader.reload()
    expect(trader.get_by_text("Ingecheckt om")).to_be_visible()
    trader.get_by_role("link", name="Facturen").click()
    expect(trader.get_by_role("heading", name="Facturen")).to_be_visible()
    check(trader, "trader-invoices")


def test_the_public_sees_who_sells_what_where_and_can_search_by_product(page: Page, check: Check) -> None:
    page.goto("/console/public/markets")
    check(page, "public-markets")
    page.locator("main a[href*='/public/markets/']").first.click()
    expect(page.get_by_role("img", name="Marktplan")).to_be_visible()
    check(page, "public-market-day")
    page.get_by_label("Zoek een product").fill("kaas")
    page.get_by_role("button", name="Zoeken").click()
    expect(page).to_have_url(re.compile(r"product=kaas"))
    expect(page.get_by_role("status")).to_contain_text("kramers gevonden")
