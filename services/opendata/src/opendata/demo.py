"""Demo data for `make run`: district boundaries for Hasselt and Geel, for statistics per district.

These are coarse demo boundaries (the centre as a circle, the rest of the municipality as a box with the
centre cut out), not official ones: a city puts its own (e.g. statistical sectors) with
PUT /v1/admin/districts. Everything else this service publishes comes from the other services' events.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, select

from opendata import domain, store
from opendata.api import replace_districts
from opendata.handlers import ensure_pseudonym_key
from opendata.settings import Settings
from servicekit.service import ServiceContext


def _circle(lat: float, lon: float, radius_m: float, points: int = 32) -> list[list[float]]:
    ring = []
    for i in range(points):
        angle = 2 * math.pi * i / points
        d_lat = radius_m * math.cos(angle) / 111_320
        d_lon = radius_m * math.sin(angle) / (111_320 * math.cos(math.radians(lat)))
        ring.append([round(lon + d_lon, 6), round(lat + d_lat, 6)])
    return [*ring, ring[0]]


def _box(south: float, west: float, north: float, east: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def _feature(name: str, *rings: list[list[float]]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"name": name},
        "geometry": {"type": "Polygon", "coordinates": list(rings)},
    }


def demo_districts() -> dict[str, dict[str, Any]]:
    hasselt_centre = _circle(50.9305, 5.3378, 600)
    geel_centre = _circle(51.1620, 4.9905, 1200)
    return {
        "71022": {
            "type": "FeatureCollection",
            "features": [
                _feature("Hasselt-Centrum", hasselt_centre),
                _feature("Hasselt buiten het centrum", _box(50.86, 5.22, 50.99, 5.43), hasselt_centre[::-1]),
            ],
        },
        "13008": {
            "type": "FeatureCollection",
            "features": [
                _feature("Geel-Centrum", geel_centre),
                _feature("Geel buiten het centrum", _box(51.10, 4.89, 51.24, 5.09), geel_centre[::-1]),
            ],
        },
    }


async def seed(context: ServiceContext) -> None:
    """The pseudonym key always; demo districts when demo data is on and the tenant has none yet."""
    settings = context.settings
    configured = settings.pseudonym_key if isinstance(settings, Settings) else ""
    async with context.uow_factory() as uow:
        await ensure_pseudonym_key(uow.session, configured)
    if not settings.demo_data:
        return
    for tenant, collection in demo_districts().items():
        async with context.uow_factory() as uow:
            table = store.districts
            count = await uow.session.execute(
                select(func.count()).select_from(table).where(table.c.tenant == tenant)
            )
            if count.scalar_one() == 0:
                await replace_districts(uow.session, tenant, domain.check_districts(collection))
