"""Demo data for `make run`: Hasselt's Tuesday and Friday markets on the Kolonel Dusartplein, and Geel's."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from contracts import market as contract
from eventbus import UnitOfWorkFactory
from market import models, store
from market.handlers import markets
from servicekit.auth import Principal
from servicekit.devidp import demo_user_id
from servicekit.service import ServiceContext

HASSELT, GEEL = "71022", "13008"
_NAMESPACE = uuid.UUID("0b7f3c52-5d0e-4d39-8a8e-8f6a1c2d9e10")
SCHEDULE_WEEKS = 4
INSURED_UNTIL = date(2027, 12, 31)

CATEGORIES: dict[str, tuple[str, ...]] = {
    "groenten en fruit": ("groenten", "fruit", "aardappelen", "kruiden"),
    "kaas": ("kaas", "boter", "eieren"),
    "vis": ("verse vis", "mosselen", "gerookte zalm"),
    "brood en gebak": ("brood", "taart", "koffiekoeken"),
    "vlees en charcuterie": ("vlees", "charcuterie", "kip aan het spit"),
    "bloemen en planten": ("bloemen", "planten", "zaden"),
    "textiel": ("kleding", "sokken", "sjaals"),
    "huishoud": ("huishoudartikelen", "keukengerei", "batterijen"),
    "snoep en noten": ("snoep", "noten", "gedroogd fruit"),
    "streekproducten": ("Limburgse vlaai", "honing", "jenever", "siroop"),
}
FOOD = frozenset(
    {"groenten en fruit", "kaas", "vis", "brood en gebak", "vlees en charcuterie", "snoep en noten"}
)
FIRST = (
    "Jan",
    "Els",
    "Luc",
    "An",
    "Koen",
    "Sofie",
    "Bart",
    "Lies",
    "Tom",
    "Griet",
    "Wim",
    "Inge",
    "Dirk",
    "Ann",
)
LAST = (
    "Peeters",
    "Janssens",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Wouters",
    "Vermeulen",
    "Vanderstraeten",
    "Lenaerts",
    "Vandeput",
    "Bollen",
    "Schepers",
    "Thijs",
    "Hermans",
    "Moors",
    "Nijs",
    "Cox",
)


def demo_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, "/".join(parts))


def kbo_number(serial: int) -> str:
    """A KBO number with valid mod-97 check digits (0 and then a 7-digit serial)."""
    first = f"0{3_000_000 + serial * 7_919 % 6_000_000:07d}"
    return f"{first}{97 - int(first) % 97:02d}"


def _lat_lon(origin: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    lat0, lon0 = origin
    lat = lat0 + north_m / store.METRES_PER_DEGREE_LAT
    lon = lon0 + east_m / (store.METRES_PER_DEGREE_LAT * math.cos(math.radians(lat0)))
    return round(lat, 7), round(lon, 7)


@dataclass(frozen=True)
class RowSpec:
    name: str
    stalls: int
    north_m: float
    features: tuple[str, ...] = ()
    specialised: dict[int, str] | None = None
    obstacle_after: int | None = None
    length_m: float = 3.0


def build_plan(origin: tuple[float, float], rows: list[RowSpec]) -> models.PlanIn:
    """Rows running east-west across the square; facing rows two by two with a 4 m aisle in between."""
    built = []
    for spec in rows:
        stalls = []
        east = -spec.stalls * spec.length_m / 2
        for n in range(1, spec.stalls + 1):
            lat, lon = _lat_lon(origin, east, spec.north_m)
            stalls.append(
                models.StallIn(
                    number=f"{spec.name}{n}",
                    length_m=Decimal(str(spec.length_m)),
                    lat=lat,
                    lon=lon,
                    specialisation=(spec.specialised or {}).get(n),
                    features=list(spec.features),
                )
            )
            # An obstacle (tree, lamp post) takes a metre and breaks adjacency.
            east += spec.length_m + (1.0 if n == spec.obstacle_after else 0.0)
        after = [f"{spec.name}{spec.obstacle_after}"] if spec.obstacle_after else []
        built.append(models.RowIn(name=spec.name, stalls=stalls, obstacles_after=after))
    return models.PlanIn(rows=built)


def hasselt_plan() -> models.PlanIn:
    """About 150 stalls on the Kolonel Dusartplein (50.9307 N, 5.3378 E)."""
    veg = {n: "groenten en fruit" for n in range(1, 6)}
    fish = {n: "vis" for n in range(1, 4)}
    rows = [
        RowSpec("A", 12, 30.0, ("food", "electricity", "water"), fish, length_m=4.0),
        RowSpec("B", 16, 26.0, ("electricity",), veg),
        RowSpec("C", 16, 18.0, ("electricity",), obstacle_after=8),
        RowSpec("D", 16, 14.0, (), {n: "bloemen en planten" for n in range(12, 17)}),
        RowSpec("E", 16, 6.0, (), obstacle_after=8),
        RowSpec("F", 16, 2.0),
        RowSpec("G", 16, -6.0, (), obstacle_after=10),
        RowSpec("H", 16, -10.0),
        RowSpec("I", 14, -18.0, ("electricity",)),
        RowSpec("J", 10, -24.0, ("evi", "electricity"), length_m=6.0),
    ]
    return build_plan((50.9307, 5.3378), rows)


def geel_plan() -> models.PlanIn:
    rows = [
        RowSpec("1", 12, 10.0, ("electricity",), {1: "groenten en fruit", 2: "groenten en fruit"}),
        RowSpec("2", 12, 6.0, (), obstacle_after=6),
        RowSpec("3", 12, -2.0, ("food", "electricity")),
        RowSpec("4", 8, -6.0),
    ]
    return build_plan((51.1617, 4.9905), rows)


def _market(
    name: str, place: models.PlaceIn, weekdays: list[int], plan: models.PlanIn, quotas: dict[str, int]
) -> models.MarketIn:
    return models.MarketIn(
        name=name,
        place=place,
        weekdays=weekdays,
        opens=time(8, 0),
        closes=time(13, 0),
        setup_starts=time(6, 0),
        setup_ends=time(7, 45),
        regulation=models.RegulationIn(
            release_time=time(8, 30),
            max_stalls_per_trader=3,
            quotas=quotas,
            tariff=models.TariffIn(per_metre_cents=150, per_stall_cents=0, electricity_cents=350),
        ),
        plan=plan,
    )


DUSART = models.PlaceIn(
    name="Kolonel Dusartplein", address="Kolonel Dusartplein, 3500 Hasselt", lat=50.9307, lon=5.3378
)
GEEL_MARKT = models.PlaceIn(name="Markt", address="Markt, 2440 Geel", lat=51.1617, lon=4.9905)
QUOTAS = {"vis": 6, "bloemen en planten": 10, "textiel": 20}


def demo_markets() -> list[tuple[str, uuid.UUID, models.MarketIn]]:
    return [
        (
            HASSELT,
            demo_id("market", "hasselt-tuesday"),
            _market("Dinsdagmarkt", DUSART, [1], hasselt_plan(), QUOTAS),
        ),
        (
            HASSELT,
            demo_id("market", "hasselt-friday"),
            _market("Vrijdagmarkt", DUSART, [4], hasselt_plan(), QUOTAS),
        ),
        (
            GEEL,
            demo_id("market", "geel-wednesday"),
            _market("Weekmarkt Geel", GEEL_MARKT, [2], geel_plan(), {}),
        ),
    ]


def demo_traders(tenant: str, count: int, first_serial: int, linked: dict[int, str]) -> list[dict[str, Any]]:
    """`count` traders; `linked` maps an index to a demo login whose trader record it becomes."""
    rng = random.Random(f"traders-{tenant}")
    categories = list(CATEGORIES)
    rows = []
    for i in range(count):
        category = categories[rng.randrange(len(categories))]
        person = f"{FIRST[rng.randrange(len(FIRST))]} {LAST[rng.randrange(len(LAST))]}"
        username = linked.get(i)
        if username:
            category = "streekproducten"  # no quota, so the demo logins are placed when a stall is free
        trader_id = uuid.UUID(demo_user_id(username)) if username else demo_id("trader", tenant, str(i))
        rows.append(
            {
                "id": trader_id,
                "tenant": tenant,
                "user_subject": demo_user_id(username) if username else None,
                "kbo_number": kbo_number(first_serial + i),
                "name": f"{CATEGORIES[category][0].capitalize()} {person.split()[1]} ({person.split()[0]})",
                "products": list(rng.sample(CATEGORIES[category], k=min(3, len(CATEGORIES[category])))),
                "specialisation": category,
                # A few lapsed insurances show the eligibility check at work.
                "insurance_valid_until": INSURED_UNTIL if i % 50 != 49 else date(2024, 12, 31),
                "food_registration": f"FAVV-{first_serial + i:06d}" if category in FOOD else None,
                "staff": [],
                "registered_at": datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=i * 5),
                # Most traders agree to appear in the open market data; some do not, and stay out of it.
                "open_data": i % 7 != 3,
            }
        )
    return rows


HOLDER_ROWS = {"C", "D", "E", "F", "G", "H", "I", "2", "4"}


def holder_stalls(plan: models.PlanIn, wants: list[int]) -> list[list[str]]:
    """Contiguous plain stalls for holders wanting 1 or 2 stalls, row by row (never across an obstacle)."""
    segments: list[list[str]] = []
    for row in plan.rows:
        if row.name not in HOLDER_ROWS:
            continue
        current: list[str] = []
        for stall in row.stalls:
            if stall.specialisation is None:
                current.append(stall.number)
            if stall.number in row.obstacles_after or stall.specialisation is not None:
                segments.append(current)
                current = []
        segments.append(current)
    given: list[list[str]] = []
    for count in wants:
        while segments and len(segments[0]) < count:
            segments.pop(0)
        if not segments:
            break
        given.append(segments[0][:count])
        del segments[0][:count]
    return given


async def _seed_market(
    uow_factory: UnitOfWorkFactory,
    admin: Principal,
    market_id: uuid.UUID,
    body: models.MarketIn,
    holders: list[dict[str, Any]],
) -> None:
    async with uow_factory() as uow:
        exists = await uow.session.execute(select(store.markets.c.id).where(store.markets.c.id == market_id))
        if exists.first() is not None:
            return
    await markets.create_market(uow_factory, admin, body, market_id=market_id)
    wants = [2 if i % 4 == 3 else 1 for i in range(len(holders))]
    async with uow_factory() as uow:
        now = datetime.now(UTC)
        for trader, stalls in zip(holders, holder_stalls(body.plan, wants), strict=False):
            sub_id = demo_id("subscription", str(market_id), str(trader["id"]))
            granted_on = trader["registered_at"].date() + timedelta(days=30)
            await uow.session.execute(
                insert(store.subscriptions).values(
                    id=sub_id,
                    tenant=admin.tenant,
                    market_id=market_id,
                    trader_id=trader["id"],
                    stalls=stalls,
                    specialisation=trader["specialisation"],
                    granted_on=granted_on,
                )
            )
            uow.emit(
                contract.SubscriptionGranted(
                    subscription_id=sub_id,
                    market_id=market_id,
                    trader_id=trader["id"],
                    stall_numbers=stalls,
                    specialisation=trader["specialisation"],
                    granted_on=granted_on,
                    granted_at=now,
                ),
                tenant=admin.tenant,
                subject=str(sub_id),
            )


async def _seed_traders(uow_factory: UnitOfWorkFactory, rows: list[dict[str, Any]]) -> None:
    async with uow_factory() as uow:
        known = {tid for (tid,) in await uow.session.execute(select(store.traders.c.id))}
        fresh = [row for row in rows if row["id"] not in known]
        if not fresh:
            return
        await uow.session.execute(insert(store.traders), fresh)
        for row in fresh:
            uow.emit(
                contract.TraderRegistered(
                    trader_id=row["id"],
                    kbo_number=row["kbo_number"],
                    name=row["name"],
                    products=row["products"],
                    specialisation=row["specialisation"],
                    registered_at=row["registered_at"],
                    open_data=row["open_data"],
                ),
                tenant=row["tenant"],
                subject=str(row["id"]),
            )


async def _seed_applications(
    uow_factory: UnitOfWorkFactory, admin: Principal, market_id: uuid.UUID, applicants: list[dict[str, Any]]
) -> None:
    """Daily-place applications for the market's next day, so an allocation can run at once."""
    days = await markets.list_days(uow_factory, admin, market_id, lambda d: d.status == "scheduled")
    if not days:
        return
    day = days[0]
    market = await markets.get_market(uow_factory, admin, market_id)
    async with uow_factory() as uow:
        found = await uow.session.execute(
            select(store.applications.c.id).where(store.applications.c.market_day_id == day.id).limit(1)
        )
        if found.first() is not None:
            return
        numbers = list(store.stall_index(market.plan))
        rng = random.Random(f"applications-{market_id}")
        now = datetime.now(UTC)
        for trader in applicants:
            most = 2 if rng.random() < 0.3 else 1
            body = models.ApplicationIn(
                min_stalls=1,
                max_stalls=most,
                preferred_stalls=rng.sample(numbers, k=3),
                anywhere=rng.random() < 0.8,
            )
            app_id = demo_id("application", str(day.id), str(trader["id"]))
            await uow.session.execute(
                insert(store.applications).values(
                    id=app_id,
                    tenant=admin.tenant,
                    market_day_id=day.id,
                    trader_id=trader["id"],
                    submitted_at=now,
                    **body.model_dump(),
                )
            )
            uow.emit(
                contract.ApplicationSubmitted(
                    application_id=app_id,
                    market_day_id=day.id,
                    market_id=market_id,
                    trader_id=trader["id"],
                    market_date=day.date,
                    min_stalls=body.min_stalls,
                    max_stalls=body.max_stalls,
                    preferred_stalls=body.preferred_stalls,
                    anywhere=body.anywhere,
                    submitted_at=now,
                ),
                tenant=admin.tenant,
                subject=str(day.id),
            )


def _admin(tenant: str) -> Principal:
    return Principal(subject="demo-data", roles=frozenset({"city_admin"}), tenant=tenant, name="demo data")


async def seed(uow_factory: UnitOfWorkFactory, today: date) -> None:
    """Create the demo markets, traders, subscriptions, days and applications; a second run adds nothing."""
    hasselt = demo_traders(HASSELT, 200, 1_000, {0: "hasselt.trader", 1: "hasselt.trader2"})
    geel = demo_traders(GEEL, 40, 5_000, {0: "geel.trader", 1: "geel.trader2"})
    await _seed_traders(uow_factory, hasselt + geel)
    holders = {HASSELT: (hasselt[1:71], hasselt[1:2] + hasselt[71:130]), GEEL: (geel[1:21], [])}
    applicants = {HASSELT: (hasselt[130:190], hasselt[100:150]), GEEL: (geel[21:38], [])}
    for number, (tenant, market_id, body) in enumerate(demo_markets()):
        admin = _admin(tenant)
        which = 0 if tenant == GEEL or number == 0 else 1
        await _seed_market(uow_factory, admin, market_id, body, holders[tenant][which])
        await markets.schedule_days(
            uow_factory,
            admin,
            market_id,
            models.DaysIn(start=today, end=today + timedelta(weeks=SCHEDULE_WEEKS)),
        )
        await _seed_applications(uow_factory, admin, market_id, applicants[tenant][which])


async def seed_demo_data(context: ServiceContext) -> None:
    """Startup hook: seed when the settings ask for demo data."""
    if context.settings.demo_data:
        await seed(context.uow_factory, datetime.now(UTC).date())
