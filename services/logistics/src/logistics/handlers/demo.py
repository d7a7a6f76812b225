"""Demo data for `make run`: Hasselt's hubs, fleet, centre zones and a day of shop orders; Geel, smaller."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select

from eventbus import UnitOfWorkFactory
from logistics import domain, records, store
from logistics.handlers import fleet
from logistics.handlers.orders import add_order
from logistics.routing import haversine_m
from logistics.schemas import HubIn, OrderIn, VehicleIn, ZoneIn
from logistics.settings import Settings
from servicekit.auth import Principal
from servicekit.devidp import demo_user_id
from servicekit.service import ServiceContext

HASSELT, GEEL = "71022", "13008"
STREETS = (
    "Hoogstraat", "Demerstraat", "Koning Albertstraat", "Maastrichterstraat", "Kapelstraat", "Aldestraat",
    "Fruitmarkt", "Grote Markt", "Havermarkt", "Zuivelmarkt", "Botermarkt", "Lombaardstraat", "Dorpsstraat",
    "Minderbroedersstraat", "Kolonel Dusartplein", "Badderijstraat", "Zuivelmarkt", "Ridder Portmansstraat",
)  # fmt: skip
TRADES = (
    "Boekhandel", "Bakkerij", "Schoenen", "Juwelier", "Kledingzaak", "Apotheek", "Bloemist", "Chocolatier",
    "Opticien", "Speelgoed", "Koffiebar", "Slagerij", "Wijnhandel", "Fietsenwinkel", "Kaashandel",
)  # fmt: skip


@dataclass(frozen=True)
class City:
    tenant: str
    username: str
    centre: tuple[float, float]
    radius_m: float
    shops: int
    orders: int


def circle(lat: float, lon: float, radius_m: float, sides: int = 16, stretch: float = 1.0) -> dict[str, Any]:
    """A GeoJSON polygon approximating a circle (or an ellipse stretched east-west) around a point."""
    dlat = radius_m / 111_320
    dlon = radius_m * stretch / (111_320 * math.cos(math.radians(lat)))
    ring = [
        [
            round(lon + dlon * math.cos(2 * math.pi * i / sides), 6),
            round(lat + dlat * math.sin(2 * math.pi * i / sides), 6),
        ]
        for i in range(sides)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def kbo(first_eight: int) -> str:
    digits = f"{first_eight:08d}{97 - first_eight % 97:02d}"
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


async def seed_demo_data(context: ServiceContext) -> None:
    """Idempotent: the fleet once, today's orders once per day (a restart adds nothing)."""
    settings = context.settings
    if not settings.demo_data:
        return
    assert isinstance(settings, Settings)
    today = datetime.now(settings.zone).date()
    await _seed_hasselt(context.uow_factory, settings, today)
    await _seed_geel(context.uow_factory, settings, today)


def _principal(tenant: str, username: str) -> Principal:
    return Principal(subject=demo_user_id(username), roles=frozenset({"operator"}), tenant=tenant)


async def _existing_hub(uow_factory: UnitOfWorkFactory, tenant: str, code: str) -> UUID | None:
    async with uow_factory() as uow:
        table = store.hubs
        found: UUID | None = await uow.session.scalar(
            select(table.c.id).where(table.c.tenant == tenant, table.c.code == code)
        )
        return found


async def _seed_hasselt(uow_factory: UnitOfWorkFactory, settings: Settings, today: date) -> None:
    operator = _principal(HASSELT, "hasselt.operator")
    main = await _existing_hub(uow_factory, HASSELT, "sdc-kuringen")
    micro = await _existing_hub(uow_factory, HASSELT, "microhub-station")
    if main is None or micro is None:
        main, micro = await _hasselt_fleet(uow_factory, operator)
    city = City(HASSELT, "hasselt.shipper", (50.9305, 5.3378), 520, 120, 170)
    await _orders(uow_factory, settings, city, today, (main, micro), pedestrian=(50.9304, 5.3378, 230))


async def _hasselt_fleet(uow_factory: UnitOfWorkFactory, operator: Principal) -> tuple[UUID, UUID]:
    main = await fleet.create_hub(
        uow_factory,
        operator,
        HubIn(
            code="sdc-kuringen",
            name="Stadsdistributiecentrum Kuringen",
            address="Kuringersteenweg, 3500 Hasselt",
            location={"lat": 50.9445, "lon": 5.3045},
            opening_hours=[{"start": "05:00", "end": "20:00"}],
        ),
    )
    micro = await fleet.create_hub(
        uow_factory,
        operator,
        HubIn(
            code="microhub-station",
            name="Microhub Stationsplein",
            address="Stationsplein, 3500 Hasselt",
            location={"lat": 50.9268, "lon": 5.3275},
            opening_hours=[{"start": "06:00", "end": "19:00"}],
        ),
    )
    driver = demo_user_id("hasselt.driver")
    vans = [
        ("van", 4, 800, 9, 3500, ("06:00", "15:00"), 45, main.id),
        ("electric_van", 3, 600, 7, 3000, ("06:00", "16:00"), 25, main.id),
        ("cargo_bike", 5, 180, 1.5, 300, ("07:00", "17:00"), 5, micro.id),
    ]
    for kind, count, kg, m3, gross, (start, end), per_km, hub in vans:
        for i in range(1, count + 1):
            code = f"{kind.replace('_', '-')}-{i}"
            body = VehicleIn(
                code=code,
                name=f"{kind.replace('_', ' ').title()} {i}",
                kind=kind,
                capacity_kg=kg,
                capacity_m3=m3,
                gross_weight_kg=gross,
                cost_per_km_cents=per_km,
                cost_per_hour_cents=2400 if kind == "cargo_bike" else 3200,
                shift={"start": start, "end": end},
                start_hub_id=hub,
                driver_id=driver if code in ("cargo-bike-1", "electric-van-1") else None,
            )
            await fleet.create_vehicle(uow_factory, operator, body)
    for zone in _hasselt_zones():
        await fleet.create_zone(uow_factory, operator, zone)
    return main.id, micro.id


def _hasselt_zones() -> list[ZoneIn]:
    def rule(kind: str, *windows: tuple[str, str]) -> dict[str, Any]:
        return {"kind": kind, "windows": [{"start": s, "end": e} for s, e in windows]}

    return [
        ZoneIn(
            code="binnen-groene-boulevard",
            name="Binnen de Groene Boulevard",
            geometry=circle(50.9305, 5.3378, 520, 24),
            rules=[rule("van", ("06:00", "11:00")), rule("electric_van"), rule("cargo_bike")],
            max_weight_kg=7500,
        ),
        ZoneIn(
            code="voetgangerszone",
            name="Voetgangerszone",
            geometry=circle(50.9304, 5.3378, 230, 12, stretch=1.3),
            rules=[
                rule("van", ("06:00", "09:00")),
                rule("electric_van", ("06:00", "10:00")),
                rule("cargo_bike"),
            ],
            max_weight_kg=3500,
        ),
        ZoneIn(
            code="kolonel-dusartplein",
            name="Kolonel Dusartplein (markt)",
            geometry=circle(50.9312, 5.3385, 70, 8),
            rules=[rule("electric_van", ("06:00", "08:00")), rule("cargo_bike")],
        ),
    ]


async def _seed_geel(uow_factory: UnitOfWorkFactory, settings: Settings, today: date) -> None:
    operator = _principal(GEEL, "geel.operator")
    hub = await _existing_hub(uow_factory, GEEL, "hub-geel-zuid")
    if hub is None:
        created = await fleet.create_hub(
            uow_factory,
            operator,
            HubIn(
                code="hub-geel-zuid",
                name="Hub Geel Zuid",
                address="Antwerpseweg, 2440 Geel",
                location={"lat": 51.1520, "lon": 4.9870},
                opening_hours=[{"start": "05:30", "end": "19:00"}],
            ),
        )
        hub = created.id
        for code, kind, kg, m3 in (
            ("van-1", "van", 800, 9),
            ("e-van-1", "electric_van", 600, 7),
            ("bike-1", "cargo_bike", 180, 1.5),
        ):
            body = VehicleIn(
                code=code,
                name=code,
                kind=kind,
                capacity_kg=kg,
                capacity_m3=m3,
                gross_weight_kg=3500 if kind == "van" else 300,
                shift={"start": "06:30", "end": "15:30"},
                start_hub_id=hub,
                driver_id=demo_user_id("geel.driver") if code == "bike-1" else None,
            )
            await fleet.create_vehicle(uow_factory, operator, body)
        markt = ZoneIn(
            code="markt-geel",
            name="Markt Geel",
            geometry=circle(51.1620, 4.9900, 200, 12),
            rules=[
                {"kind": "van", "windows": [{"start": "06:00", "end": "10:00"}]},
                {"kind": "electric_van"},
                {"kind": "cargo_bike"},
            ],
        )
        await fleet.create_zone(uow_factory, operator, markt)
    city = City(GEEL, "geel.shipper", (51.1620, 4.9900), 700, 20, 20)
    await _orders(uow_factory, settings, city, today, (hub, hub), pedestrian=(51.1620, 4.9900, 200))


async def _orders(
    uow_factory: UnitOfWorkFactory,
    settings: Settings,
    city: City,
    today: date,
    hubs: tuple[UUID, UUID],
    pedestrian: tuple[float, float, float],
) -> None:
    async with uow_factory() as uow:
        table = store.orders
        seeded = await uow.session.scalar(
            select(table.c.id)
            .where(table.c.tenant == city.tenant, table.c.delivery_date == today)
            .where(table.c.reference.like("DEMO-%"))
            .limit(1)
        )
        if seeded is not None:
            return
        rng = random.Random(f"{city.tenant}-{today.isoformat()}")
        shops = [_shop(rng, city, i) for i in range(city.shops)]
        shippers = [demo_user_id(city.username), kbo(40317070), kbo(45612345), kbo(87654321)]
        for i in range(city.orders):
            body = _order(rng, settings, city, today, i, shops[i % len(shops)], shippers, hubs, pedestrian)
            await add_order(uow, settings, city.tenant, body.shipper_id or shippers[0], body)
        if city.tenant == HASSELT:
            for n, trader in enumerate(("hasselt.trader", "hasselt.trader2")):
                await add_order(
                    uow, settings, city.tenant, shippers[1], _stall_order(today, n, trader, hubs[0])
                )


def _shop(rng: random.Random, city: City, i: int) -> tuple[str, str, float, float]:
    lat0, lon0 = city.centre
    while True:
        dy, dx = rng.uniform(-1, 1), rng.uniform(-1, 1)
        if dx * dx + dy * dy <= 0.85:
            break
    lat = lat0 + dy * city.radius_m / 111_320
    lon = lon0 + dx * city.radius_m / (111_320 * math.cos(math.radians(lat0)))
    street = rng.choice(STREETS)
    return f"{rng.choice(TRADES)} {street.split()[0]} {i + 1}", f"{street} {rng.randint(1, 90)}", lat, lon


def _order(
    rng: random.Random,
    settings: Settings,
    city: City,
    today: date,
    i: int,
    shop: tuple[str, str, float, float],
    shippers: list[str],
    hubs: tuple[UUID, UUID],
    pedestrian: tuple[float, float, float],
) -> OrderIn:
    name, address, lat, lon = shop
    start, end = rng.choice(
        (("07:00", "10:00"), ("08:00", "11:00"), ("09:00", "12:00"), ("13:00", "17:00"), ("07:00", "17:00"))
    )
    window = {
        "start": records.local_moment(today, start, settings.zone),
        "end": records.local_moment(today, end, settings.zone),
    }
    inside = _metres(lat, lon, pedestrian[0], pedestrian[1]) <= pedestrian[2]
    micro = rng.random() < (0.7 if inside else 0.2)
    return OrderIn(
        reference=f"DEMO-{today.isoformat()}-{i:03d}",
        shipper_id=shippers[i % len(shippers)],
        recipient={
            "kind": "shop",
            "name": name,
            "address": f"{address}, Hasselt" if city.tenant == HASSELT else f"{address}, Geel",
            "shop_id": f"shop-{i % city.shops + 1}",
            "location": {"lat": lat, "lon": lon},
        },
        delivery_date=today,
        windows=[window],
        weight_kg=round(rng.uniform(2, 30), 1),
        volume_m3=round(rng.uniform(0.02, 0.3), 2),
        service_s=rng.choice((120, 180, 240)),
        priority=rng.choice((0, 1, 1, 2, 3)),
        hub_id=hubs[1] if micro else hubs[0],
    )


def _stall_order(today: date, n: int, trader: str, hub: UUID) -> OrderIn:
    return OrderIn(
        reference=f"DEMO-{today.isoformat()}-stall-{n}",
        recipient={
            "kind": "market_stall",
            "name": f"Marktkramer {n + 1}",
            "trader_id": UUID(demo_user_id(trader)),
        },
        delivery_date=today,
        weight_kg=40.0,
        volume_m3=0.4,
        priority=2,
        hub_id=hub,
    )


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return haversine_m(domain.GeoPoint(lat1, lon1), domain.GeoPoint(lat2, lon2))
