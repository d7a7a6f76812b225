"""Demo data for Hasselt and Geel: schemes, providers run by the demo provider login, a citizen."""

from __future__ import annotations

from datetime import date, time

import sqlalchemy as sa

from mobility_credit import accounts, store
from mobility_credit.domain import CapPeriod, Mode, SchemeKind
from mobility_credit.handlers.catalogue import create_scheme, grant_budget, register_provider
from mobility_credit.models import (
    AdvantageIn,
    AreaIn,
    CapIn,
    GrantIn,
    ModeRuleIn,
    ProviderIn,
    SchemeIn,
)
from servicekit.auth import Principal
from servicekit.devidp import demo_user_id
from servicekit.service import ServiceContext

HASSELT, GEEL = "71022", "13008"
_START = date(2026, 1, 1)
# KBO numbers and IBANs below are made up but carry valid check digits.
HASSELT_PROVIDERS = (
    ProviderIn(name="De Lijn", kbo="0242.172.079", iban="BE41910000001110", bic="GKCCBEBB", modes=[Mode.BUS],
               operator=demo_user_id("hasselt.provider")),
    ProviderIn(name="NMBS", kbo="0203.612.007", iban="BE64363000001252", bic="BBRUBEBB", modes=[Mode.TRAIN],
               operator=demo_user_id("hasselt.provider")),
    ProviderIn(name="Blue-bike Hasselt", kbo="0876.543.270", iban="BE22100000001347", bic=None,
               modes=[Mode.SHARED_BIKE, Mode.BIKE_PARKING], operator=demo_user_id("hasselt.provider")),
    ProviderIn(name="Taxi Hasselt", kbo="0441.065.037", iban="BE92734000001423", bic="KREDBEBB",
               modes=[Mode.TAXI, Mode.CAR_SHARING], operator=demo_user_id("hasselt.provider")),
)  # fmt: skip
GEEL_PROVIDERS = (
    ProviderIn(name="De Lijn Kempen", kbo="0212.345.074", iban="BE28979000001520", bic="ARSPBE22",
               modes=[Mode.BUS, Mode.SHARED_BIKE], operator=demo_user_id("geel.provider")),
)  # fmt: skip

HASSELT_BUDGET = SchemeIn(
    name="Mobiliteitsbudget Hasselt",
    kind=SchemeKind.PERIODIC,
    amount_cents=30_000,
    valid_from=_START,
    period_months=12,
    rules=[
        ModeRuleIn(mode=Mode.BUS),
        ModeRuleIn(mode=Mode.TRAIN),
        ModeRuleIn(mode=Mode.SHARED_BIKE, percent=50),
        ModeRuleIn(mode=Mode.BIKE_PARKING),
        ModeRuleIn(mode=Mode.CAR_SHARING, percent=50),
        ModeRuleIn(mode=Mode.TAXI, percent=50, max_per_trip_cents=1_500),
    ],
    advantages=[
        AdvantageIn(
            name="Deelfiets in de avondspits",
            rule=ModeRuleIn(mode=Mode.SHARED_BIKE, percent=100, max_per_trip_cents=200),
            start=time(16, 0),
            end=time(18, 0),
        ),
        AdvantageIn(
            name="Trein vanuit station Hasselt",
            rule=ModeRuleIn(mode=Mode.TRAIN, percent=100),
            area=AreaIn(lat=50.9296, lon=5.3277, radius_m=400),
            place_names=["Hasselt station"],
        ),
    ],
    caps=[
        CapIn(amount_cents=5_000, period=CapPeriod.MONTH, mode=Mode.TAXI),
        CapIn(amount_cents=10_000, period=CapPeriod.MONTH),
    ],
)
HASSELT_PREMIUM = SchemeIn(
    name="Autovrij premie",
    kind=SchemeKind.ONE_OFF,
    amount_cents=50_000,
    valid_from=_START,
    expiry_months=24,
    rules=[ModeRuleIn(mode=mode) for mode in Mode],
)
GEEL_BUDGET = SchemeIn(
    name="Mobiliteitsbudget Geel",
    kind=SchemeKind.PERIODIC,
    amount_cents=15_000,
    valid_from=_START,
    rules=[ModeRuleIn(mode=Mode.BUS), ModeRuleIn(mode=Mode.SHARED_BIKE, percent=50)],
)


def _admin(tenant: str) -> Principal:
    return Principal(subject="demo-data", roles=frozenset({"city_admin"}), tenant=tenant)


async def _seed_city(
    context: ServiceContext,
    tenant: str,
    providers: tuple[ProviderIn, ...],
    schemes: tuple[SchemeIn, ...],
    citizen: str,
) -> None:
    uow_factory, admin = context.uow_factory, _admin(tenant)
    for provider in providers:
        await register_provider(
            uow_factory, admin, provider, accounts.derived_id("demo-provider", tenant, provider.name)
        )
    granted = None
    for scheme in schemes:
        out = await create_scheme(
            uow_factory, admin, scheme, accounts.derived_id("demo-scheme", tenant, scheme.name)
        )
        granted = granted or out.id
    if granted is not None and not await _has_grant(context, tenant, citizen):
        await grant_budget(uow_factory, admin, granted, GrantIn(citizen_id=citizen))


async def _has_grant(context: ServiceContext, tenant: str, citizen: str) -> bool:
    g = store.grants
    async with context.uow_factory() as uow:
        found = await uow.session.execute(
            sa.select(g.c.id).where(g.c.tenant == tenant, g.c.citizen_id == citizen)
        )
        return found.first() is not None


async def seed_demo_data(context: ServiceContext) -> None:
    """Startup hook: seed the demo municipalities when `demo_data` is set; running it again adds nothing."""
    if not context.settings.demo_data:
        return
    await _seed_city(
        context,
        HASSELT,
        HASSELT_PROVIDERS,
        (HASSELT_BUDGET, HASSELT_PREMIUM),
        demo_user_id("hasselt.citizen"),
    )
    await _seed_city(context, GEEL, GEEL_PROVIDERS, (GEEL_BUDGET,), demo_user_id("geel.citizen"))
