"""The citizen journey in a browser: a bus trip paid from the budget earns coins, redeemed at a merchant."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

Check = Callable[[Page, str], None]
Login = Callable[[Page, str], None]
OpenPage = Callable[..., Page]
COINS_FOR_A_BUS_TRIP = 5


@pytest.fixture(autouse=True)
def _wallet_services_are_mounted(mounted: set[str]) -> None:
    missing = {"mobility-credit", "incentives"} - mounted
    if missing:
        pytest.skip(f"not mounted in this platform: {', '.join(sorted(missing))}")


def test_a_citizen_pays_a_bus_trip_earns_coins_and_redeems_them_at_a_merchant(
    open_page: OpenPage, login: Login, check: Check
) -> None:
    citizen = open_page(mobile=True)
    login(citizen, "geel.citizen")
    citizen.get_by_role("link", name="Mijn mobiliteitsbudget").first.click()
    available_before = citizen.locator(".figures li").first.inner_text()
    citizen_id = (citizen.locator("#citizen-id").text_content() or "").strip()
    check(citizen, "citizen-wallet")

    provider = open_page()
    login(provider, "geel.provider")
    provider.get_by_role("link", name="Ritten aanrekenen").first.click()
    provider.get_by_label("Mobiliteitspas van de reiziger").fill(citizen_id)
    provider.get_by_label("Vervoerswijze").select_option("bus")
    provider.get_by_label("Ritprijs (eurocent)").fill("300")
    check(provider, "provider-trips")
    provider.get_by_role("button", name="Aanrekenen").click()
    expect(provider.get_by_role("status").first).to_contain_text("Rit betaald")

    citizen.reload()
    expect(citizen.locator(".figures li").first).not_to_have_text(available_before)
    expect(citizen.get_by_role("table").last).to_contain_text("bus")
    citizen.get_by_role("link", name="Mijn munten").first.click()
    _wait_for_coins(citizen)
    check(citizen, "citizen-coins")
    citizen.get_by_role("button", name=re.compile("^Betaal-QR tonen")).first.click()
    expect(citizen.get_by_role("img", name="Betaal-QR-code")).to_be_visible()
    check(citizen, "citizen-pay-qr")
    payload = (citizen.locator("#qr-payload").text_content() or "").strip()

    merchant = open_page()
    login(merchant, "geel.merchant")
    merchant.get_by_role("link", name="Kassa").first.click()
    check(merchant, "merchant-till")
    merchant.get_by_label("QR-code van de klant").fill(payload)
    merchant.get_by_label("Aantal munten").fill(str(COINS_FOR_A_BUS_TRIP))
    merchant.get_by_role("button", name="Inwisselen").click()
    expect(merchant.get_by_role("status").first).to_have_text(f"{COINS_FOR_A_BUS_TRIP} munten ingewisseld.")
    expect(merchant.get_by_role("region", name="Saldo")).to_contain_text(str(COINS_FOR_A_BUS_TRIP))
    check(merchant, "merchant-redeemed")


def _wait_for_coins(page: Page) -> None:
    """Coins arrive through the event bus (TripPaid reaches incentives): reload until they are there."""
    for _ in range(30):
        if page.get_by_role("button", name=re.compile("^Betaal-QR tonen")).count():
            return
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError("no coins arrived after the bus trip")
