"""Demo data for `make run`: the Kempen and Geel coins, Geel merchants and three campaigns (seeded once)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from contracts import logistics, mobility_credit
from incentives import admin, domain, models, store
from servicekit.devidp import demo_user_id
from servicekit.service import ServiceContext

GEEL = "13008"
HASSELT = "71022"
# The Kempen region of Geel (NIS codes): Arendonk, Balen, Geel, Grobbendonk, Herentals, Herselt, Hoogstraten,
# Hulshout, Kasterlee, Laakdal, Meerhout, Ravels, Vosselaar, Westerlo.
KEMPEN = [
    "13001", "13003", "13008", "13010", "13011", "13013", "13014",
    "13016", "13017", "13053", "13021", "13035", "13046", "13049",
]  # fmt: skip
KEMPEN_COIN = domain.stable_id("demo", "coin", "KEMPEN")
GEEL_COIN = domain.stable_id("demo", "coin", "GEEL")
BIKE_SHOP = domain.stable_id("demo", "merchant", "fietsen")
BAKERY = domain.stable_id("demo", "merchant", "bakkerij")
BIKE_SHOP_KBO = "0456.789.034"
BAKERY_KBO = "0876.543.270"
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


async def seed_demo_data(context: ServiceContext) -> None:
    """Seed when `demo_data` is on; a restart finds the Kempen coin and leaves everything as it is."""
    if not context.settings.demo_data:
        return
    async with context.uow_factory() as uow:
        found = await uow.session.execute(
            sa.select(store.coin_types.c.id).where(store.coin_types.c.id == KEMPEN_COIN)
        )
        if found.first() is not None:
            return
        await admin.insert_coin_type(
            uow, _coin(KEMPEN_COIN, "KEMPEN", "Kempense munt", domain.Scope.REGIONAL, 1001)
        )
        await admin.insert_coin_type(uow, _coin(GEEL_COIN, "GEEL", "Geelse munt", domain.Scope.LOCAL, 1002))
        merchant = demo_user_id("geel.merchant")
        shops = [
            (BIKE_SHOP, "Fietsen Van Geel", BIKE_SHOP_KBO, "BE71096123456769", "Markt 12, 2440 Geel"),
            (BAKERY, "Bakkerij De Markt", BAKERY_KBO, "BE43068999999501", "Markt 3, 2440 Geel"),
        ]
        for shop_id, name, kbo, iban, place in shops:
            body = models.MerchantIn(
                name=name,
                kbo=kbo,
                iban=iban,
                place=place,
                owner_subject=merchant,
                coin_type_ids=[KEMPEN_COIN, GEEL_COIN],
            )
            await admin.insert_merchant(uow, shop_id, GEEL, body)
        for number, campaign in enumerate(_campaigns()):
            admin.check_rule(campaign.rules[0])
            await admin.insert_campaign(uow, domain.stable_id("demo", "campaign", number), GEEL, campaign)


def _coin(coin_id: UUID, code: str, name: str, scope: domain.Scope, ledger: int) -> domain.CoinType:
    members = frozenset(KEMPEN) if scope is domain.Scope.REGIONAL else frozenset({GEEL})
    return domain.CoinType(coin_id, code, name, GEEL, scope, members, ledger, rate_coins=10, rate_cents=100)


def _campaigns() -> list[models.CampaignIn]:
    trip = models.RuleIn(
        trigger=mobility_credit.TripPaid.event_type,
        condition="mode in ['bus', 'shared_bike']",
        beneficiary_field="citizen_id",
        reward_coins=5,
        limit_window=domain.Window.WEEK,
        limit_coins=20,
    )
    school = models.RuleIn(
        trigger=domain.CLAIM_TRIGGER, reward_coins=10, limit_window=domain.Window.DAY, limit_coins=10
    )
    delivery = models.RuleIn(
        trigger=logistics.StopCompleted.event_type,
        condition="vehicle_kind == 'cargo_bike' and stop_kind == 'delivery' and recipient.kind == 'shop'",
        beneficiary_kind="merchant",
        beneficiary_field="recipient.shop_id",
        reward_coins=20,
    )
    return [
        models.CampaignIn(
            name="Duurzame verplaatsing",
            sponsor="Regio Kempen",
            coin_type_id=KEMPEN_COIN,
            budget_coins=100_000,
            valid_from=SINCE,
            # Trips paid in Hasselt count too: the coins are spent at Kempen merchants.
            audience_tenants=[*KEMPEN, HASSELT],
            rules=[trip],
        ),
        models.CampaignIn(
            name="Met de fiets naar school",
            sponsor="Stad Geel",
            coin_type_id=GEEL_COIN,
            budget_coins=50_000,
            valid_from=SINCE,
            rules=[school],
        ),
        models.CampaignIn(
            name="Groene levering",
            sponsor="Stad Geel",
            coin_type_id=GEEL_COIN,
            budget_coins=50_000,
            valid_from=SINCE,
            rules=[delivery],
        ),
    ]
