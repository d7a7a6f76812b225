"""Pure open-data rules: small-group suppression, districts, pseudonyms, months in Brussels time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")
# Statistics about citizens never show a group smaller than this (suppressed, not rounded to zero).
MIN_GROUP_SIZE = 10
UNKNOWN_DISTRICT = "onbekend"


class InvalidDistricts(ValueError):
    """District boundaries that are not GeoJSON polygons with names."""


def local_day(moment: datetime) -> date:
    return moment.astimezone(BRUSSELS).date()


def local_month(moment: datetime) -> str:
    """The calendar month in Brussels time, e.g. `2026-11`."""
    return moment.astimezone(BRUSSELS).strftime("%Y-%m")


def pseudonym(key: bytes, identifier: str) -> str:
    """A keyed one-way pseudonym: enough to count distinct people, useless to find them."""
    return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()[:32]


def publishable(people: int, min_group_size: int = MIN_GROUP_SIZE) -> bool:
    """Whether a group of `people` distinct citizens may be published (0: the group holds no citizens)."""
    if min_group_size < MIN_GROUP_SIZE:
        raise ValueError(f"the minimum group size is at least {MIN_GROUP_SIZE}")
    return people == 0 or people >= min_group_size


def suppress(
    row: Mapping[str, Any], people: int, measures: Sequence[str], min_group_size: int = MIN_GROUP_SIZE
) -> dict[str, Any]:
    """The row as published: its measures blanked (None, never 0) and `suppressed` set for a small group."""
    published = dict(row)
    hidden = not publishable(people, min_group_size)
    if hidden:
        for measure in measures:
            published[measure] = None
    published["suppressed"] = hidden
    return published


@dataclass(frozen=True)
class Trip:
    month: str
    mode: str
    district: str
    person: str
    city_share_cents: int


def trip_statistics(trips: Iterable[Trip], min_group_size: int = MIN_GROUP_SIZE) -> list[dict[str, Any]]:
    """Per month, mode and district: trips, distinct citizens and euro; groups of few citizens suppressed."""
    groups: dict[tuple[str, str, str], list[Trip]] = {}
    for trip in trips:
        groups.setdefault((trip.month, trip.mode, trip.district), []).append(trip)
    rows = []
    for (month, mode, district), members in sorted(groups.items()):
        people = len({trip.person for trip in members})
        row = {
            "month": month,
            "mode": mode,
            "district": district,
            "trips": len(members),
            "citizens": people,
            "city_share_eur": round(sum(trip.city_share_cents for trip in members) / 100, 2),
        }
        rows.append(suppress(row, people, ["trips", "citizens", "city_share_eur"], min_group_size))
    return rows


@dataclass(frozen=True)
class CoinMovement:
    month: str
    kind: str  # issued | redeemed | expired
    coin_code: str
    campaign_id: str | None
    person: str | None  # a citizen's pseudonym; None for a business
    amount: int


KINDS = ("issued", "redeemed", "expired")


def coin_statistics(
    movements: Iterable[CoinMovement], min_group_size: int = MIN_GROUP_SIZE
) -> list[dict[str, Any]]:
    """Per month: coins issued per campaign, redeemed and expired per coin; few citizens: suppressed."""
    groups: dict[tuple[str, int, str, str], list[CoinMovement]] = {}
    for movement in movements:
        campaign = movement.campaign_id if movement.kind == "issued" else None
        key = (movement.month, KINDS.index(movement.kind), movement.coin_code, campaign or "")
        groups.setdefault(key, []).append(movement)
    rows = []
    for (month, kind, coin, campaign), members in sorted(groups.items()):
        people = len({m.person for m in members if m.person is not None})
        row = {
            "month": month,
            "measure": KINDS[kind],
            "coin_code": coin,
            "campaign_id": campaign or None,
            "coins": sum(m.amount for m in members),
            "movements": len(members),
            "citizens": people,
        }
        rows.append(suppress(row, people, ["coins", "movements", "citizens"], min_group_size))
    return rows


Ring = Sequence[Sequence[float]]


def _in_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Even-odd ray casting on a closed GeoJSON ring of [lon, lat] positions."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _polygons(geometry: Mapping[str, Any]) -> list[Sequence[Ring]]:
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        return [coordinates]  # type: ignore[list-item]
    if kind == "MultiPolygon":
        return list(coordinates or [])
    raise InvalidDistricts(f"a district is a Polygon or MultiPolygon, not {kind!r}")


@dataclass(frozen=True)
class District:
    name: str
    geometry: Mapping[str, Any]

    def contains(self, lat: float, lon: float) -> bool:
        for polygon in _polygons(self.geometry):
            outer, *holes = polygon
            if _in_ring(lon, lat, outer) and not any(_in_ring(lon, lat, hole) for hole in holes):
                return True
        return False


def check_districts(collection: Mapping[str, Any]) -> list[District]:
    """District boundaries from a GeoJSON FeatureCollection whose features carry `properties.name`."""
    if collection.get("type") != "FeatureCollection":
        raise InvalidDistricts("send a GeoJSON FeatureCollection")
    districts: list[District] = []
    for i, feature in enumerate(collection.get("features") or []):
        name = (feature.get("properties") or {}).get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise InvalidDistricts(f"features[{i}].properties.name: a name of 1 to 100 characters")
        geometry = feature.get("geometry") or {}
        for polygon in _polygons(geometry):
            if not polygon:
                raise InvalidDistricts(f"features[{i}]: an empty polygon")
            for ring in polygon:
                if len(ring) < 4 or list(ring[0]) != list(ring[-1]):
                    raise InvalidDistricts(f"features[{i}]: a ring has 4 or more positions and is closed")
                for position in ring:
                    if len(position) < 2 or not (-180 <= position[0] <= 180 and -90 <= position[1] <= 90):
                        raise InvalidDistricts(f"features[{i}]: positions are [lon, lat] in degrees")
        if name in {d.name for d in districts}:
            raise InvalidDistricts(f"features[{i}]: district {name!r} appears twice")
        districts.append(District(name.strip(), geometry))
    return districts


def district_of(districts: Iterable[District], lat: float | None, lon: float | None) -> str:
    """The first district containing the point; `onbekend` without coordinates or outside every district."""
    if lat is None or lon is None:
        return UNKNOWN_DISTRICT
    return next((d.name for d in districts if d.contains(lat, lon)), UNKNOWN_DISTRICT)
