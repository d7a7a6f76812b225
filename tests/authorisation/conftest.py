"""The platform under test, and two owners of every party role in Geel, each with resources of their own.

The story runs through the services' own APIs, as the owners and the city's staff would; which resource is
whose comes from the answers to the commands that made it, never from the owner-scoped routes under test.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from cityblocks.embedded import build_platform
from incentives.demo import KEMPEN_COIN
from market.demo import kbo_number
from servicekit.auth import Role
from servicekit.devidp import DemoUser, DevIdentityProvider, demo_user, demo_user_id
from servicekit.settings import ServiceSettings

GEEL = "13008"
# Roles that act as a party: what they see or change may belong to one of them (city staff roles do not).
PARTY_ROLES = frozenset(Role) - {Role.CITY_ADMIN, Role.MARKET_MASTER}
BRUSSELS = ZoneInfo("Europe/Brussels")
IBAN = "BE71096123456769"
TODAY = datetime.now(BRUSSELS).date()


@pytest.fixture
async def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Routes are planned in a thread here: a solver process spawned from this test process never answers.
    monkeypatch.setenv("LOGISTICS_SOLVER_IN_PROCESS", "false")
    app = build_platform(tmp_path)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield app, client


def second_user(role: str) -> DemoUser:
    """Another login with the role in Geel (the demo has a second trader; the others are made here)."""
    if role == Role.TRADER:
        return demo_user("geel.trader2")
    username = f"geel.{role}.second"
    return DemoUser(username, f"Geel {role} 2", (role,), GEEL, {f"{role}_id": demo_user_id(username)})


@dataclass
class Owner:
    """A login of a party role, its token, and the ids of what it owns, by the path parameter naming them."""

    user: DemoUser
    token: str
    owned: dict[str, set[str]] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def own(self, parameter: str, value: Any) -> None:
        self.owned.setdefault(parameter, set()).add(str(value))

    def ids(self) -> set[str]:
        """Everything that identifies this owner's data, its own subject included."""
        return {self.user.subject}.union(*self.owned.values())


@dataclass
class Story:
    client: httpx.AsyncClient
    identity: DevIdentityProvider
    owners: dict[str, tuple[Owner, Owner]]

    def staff(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.identity.issue(demo_user(f'geel.{role}'))}"}

    async def call(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        response = await self.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


@pytest.fixture
async def owners(platform: Any, tmp_path: Path) -> dict[str, tuple[Owner, Owner]]:
    _, client = platform
    identity = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=tmp_path))
    pairs = {
        role.value: (
            Owner(demo_user(f"geel.{role.value}"), identity.issue(demo_user(f"geel.{role.value}"))),
            Owner(second_user(role.value), identity.issue(second_user(role.value))),
        )
        for role in PARTY_ROLES
    }
    story = Story(client, identity, pairs)
    await market_story(story)
    await mobility_story(story)
    await incentives_story(story)
    await logistics_story(story)
    return pairs


async def market_story(story: Story) -> None:
    """Both traders apply for a new day, get a stall, check in and are invoiced."""
    master = story.staff("market_master")
    markets = await story.call("GET", "/market/v1/markets", master)
    start = TODAY + timedelta(days=365)
    days = await story.call(
        "POST",
        f"/market/v1/markets/{markets[0]['id']}/days",
        master,
        json={"start": start.isoformat(), "end": (start + timedelta(days=13)).isoformat()},
    )
    day = days[0]["id"]
    for trader in story.owners[Role.TRADER]:
        applied = await story.call(
            "POST", f"/market/v1/market-days/{day}/applications", trader.headers, json={"anywhere": True}
        )
        trader.own("application_id", applied["id"])
    await story.call("POST", f"/market/v1/market-days/{day}/allocations", master, json={"final": True})
    for trader in story.owners[Role.TRADER]:
        mine = await story.call("GET", "/market/v1/me/market-days", trader.headers)
        assignment = next(d["assignment_id"] for d in mine if d["market_day_id"] == day)
        trader.own("assignment_id", assignment)
        code = await story.call(
            "GET", f"/market/v1/me/assignments/{assignment}/check-in-code", trader.headers
        )
        await story.call(
            "POST", f"/market/v1/market-days/{day}/check-ins", master, json={"token": code["token"]}
        )
    invoices = await story.call("POST", f"/market/v1/market-days/{day}/invoices", master)
    for trader in story.owners[Role.TRADER]:
        for invoice in invoices:
            if invoice["trader_id"] == trader.user.subject:
                trader.own("invoice_id", invoice["id"])


async def mobility_story(story: Story) -> None:
    """A second provider is registered; each provider charges a trip and places a hold for its citizen."""
    admin = story.staff("city_admin")
    second = story.owners[Role.PROVIDER][1]
    body = {"name": "Tweede vervoerder", "kbo": kbo_number(800_001), "iban": IBAN, "modes": ["bus"]}
    await story.call(
        "POST", "/mobility-credit/v1/admin/providers", admin, json={**body, "operator": second.user.subject}
    )
    schemes = await story.call("GET", "/mobility-credit/v1/schemes", admin)
    scheme = next(s for s in schemes if s["definition"]["name"] == "Mobiliteitsbudget Geel")
    citizens = story.owners[Role.CITIZEN]
    for provider, citizen in zip(story.owners[Role.PROVIDER], citizens, strict=True):
        await story.call(
            "POST",
            f"/mobility-credit/v1/schemes/{scheme['id']}/grants",
            admin,
            json={"citizen_id": citizen.user.subject},
        )
        providers = await story.call("GET", "/mobility-credit/v1/providers", provider.headers)
        operated = next(p for p in providers if "bus" in p["modes"])
        provider.own("provider_id", operated["id"])
        trip = {
            "citizen_id": citizen.user.subject,
            "mode": "bus",
            "place": {"name": "Geel Markt"},
            "consumed_at": datetime.now(UTC).isoformat(),
            "total_cents": 200,
        }
        path = f"/mobility-credit/v1/providers/{operated['id']}"
        paid = await story.call("POST", f"{path}/trips", provider.headers | key(), json=trip)
        provider.own("trip_id", paid["id"])
        hold = {**trip, "estimated_total_cents": 300}
        del hold["total_cents"]
        held = await story.call("POST", f"{path}/holds", provider.headers | key(), json=hold)
        provider.own("hold_id", held["id"])


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def incentives_story(story: Story) -> None:
    """A second merchant is registered; each citizen earns coins (their bus trip), shows a QR code that
    their merchant redeems, and files a claim; the merchants are settled."""
    admin = story.staff("city_admin")
    kempen = str(KEMPEN_COIN)
    second = story.owners[Role.MERCHANT][1]
    await story.call(
        "POST",
        "/incentives/v1/merchants",
        admin,
        json={
            "name": "Tweede winkel",
            "kbo": kbo_number(800_002),
            "iban": IBAN,
            "owner_subject": second.user.subject,
            "coin_type_ids": [kempen],
        },
    )
    campaigns = await story.call("GET", "/incentives/v1/campaigns", admin)
    school = next(c["id"] for c in campaigns if c["name"] == "Met de fiets naar school")
    for merchant, citizen in zip(story.owners[Role.MERCHANT], story.owners[Role.CITIZEN], strict=True):
        await earned(story, citizen)
        shops = await story.call("GET", "/incentives/v1/merchants", merchant.headers)
        for shop in shops:
            merchant.own("merchant_id", shop["id"])
        qr = await story.call(
            "POST", "/incentives/v1/wallet/qr", citizen.headers, json={"coin_type_id": kempen}
        )
        redeemed = await story.call(
            "POST",
            "/incentives/v1/redemptions",
            merchant.headers,
            json={"qr": qr["payload"], "merchant_id": shops[0]["id"], "amount": 2},
        )
        merchant.own("redemption_id", redeemed["redemption_id"])
        # The redemption is also a transfer out of the citizen's wallet, in the citizen's history.
        citizen.own("transfer_id", redeemed["redemption_id"])
        citizen.own("wallet_id", redeemed["wallet_id"])
        claim = await story.call(
            "POST",
            "/incentives/v1/claims",
            citizen.headers,
            json={"campaign_id": school, "evidence": "fietspas"},
        )
        citizen.own("claim_id", claim["id"])
        # A second code the citizen shows at the till, for the walk to redeem.
        shown = await story.call(
            "POST", "/incentives/v1/wallet/qr", citizen.headers, json={"coin_type_id": kempen}
        )
        merchant.own("qr", shown["payload"])
    period = {"period_start": TODAY.isoformat(), "period_end": TODAY.isoformat()}
    batch = await story.call("POST", "/incentives/v1/settlements", admin, json=period)
    for merchant in story.owners[Role.MERCHANT]:
        for line in batch["statements"]:
            if line["merchant_id"] in merchant.owned["merchant_id"]:
                merchant.own("settlement_id", line["settlement_id"])


async def earned(story: Story, citizen: Owner) -> None:
    """The bus trip's reward arrives through the bus, a moment after the trip."""
    for _ in range(100):
        if await story.call("GET", "/incentives/v1/wallet", citizen.headers):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no coins for {citizen.user.username}")


async def logistics_story(story: Story) -> None:
    """Each shipper places an order for a day of its own; each day is planned and its route is dispatched to
    one of the two drivers."""
    operator = story.staff("operator")
    hubs = await story.call("GET", "/logistics/v1/hubs", operator)
    shippers, drivers = story.owners[Role.SHIPPER], story.owners[Role.DRIVER]
    for number, (shipper, driver) in enumerate(zip(shippers, drivers, strict=True)):
        day = TODAY + timedelta(days=30 + number)
        placed = await story.call(
            "POST", "/logistics/v1/orders", shipper.headers, json=order(day, hubs[0]["id"])
        )
        shipper.own("order_id", placed["id"])
        run = await story.call(
            "POST",
            "/logistics/v1/planning-runs",
            operator,
            json={"delivery_date": day.isoformat(), "time_limit_s": 2},
        )
        routes = await story.call("GET", f"/logistics/v1/planning-runs/{run['id']}/routes", operator)
        drivers_of = {route["vehicle_id"]: driver.user.subject for route in routes}
        dispatched = await story.call(
            "POST",
            f"/logistics/v1/planning-runs/{run['id']}/dispatch",
            operator,
            json={"drivers": drivers_of},
        )
        for route in dispatched:
            driver.own("route_id", route["id"])


def order(day: date, hub_id: str) -> dict[str, Any]:
    start = datetime.combine(day, datetime.min.time(), BRUSSELS).replace(hour=8)
    return {
        "reference": f"ownership-{uuid.uuid4()}",
        "recipient": {
            "kind": "shop",
            "name": "Boekhandel Geel",
            "address": "Markt 20, 2440 Geel",
            "location": {"lat": 51.1617, "lon": 4.9905},
        },
        "delivery_date": day.isoformat(),
        "windows": [{"start": start.isoformat(), "end": (start + timedelta(hours=8)).isoformat()}],
        "weight_kg": 4.0,
        "volume_m3": 0.05,
        "hub_id": hub_id,
    }
