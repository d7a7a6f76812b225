"""A small Hasselt scenario and a helper that plans it on offline matrices."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from logistics.domain import (
    AccessRule,
    AccessZone,
    GeoPoint,
    Hub,
    HubPickup,
    Order,
    Plan,
    PlanningRequest,
    ReplanRequest,
    ShopAddress,
    TimeWindow,
    Vehicle,
    VehicleKind,
    area_from_geojson,
)
from logistics.routing import haversine_matrix
from logistics.solver import PlanningSettings, layout, plan

DAY = datetime(2026, 11, 27, tzinfo=UTC)
HUB = Hub("hub", "Hub Kuringen", GeoPoint(50.9420, 5.3050))
CENTRE = GeoPoint(50.9300, 5.3380)
PEDESTRIAN = area_from_geojson(
    {
        "type": "Polygon",
        "coordinates": [
            [[5.333, 50.927], [5.343, 50.927], [5.343, 50.933], [5.333, 50.933], [5.333, 50.927]]
        ],
    },
    "zone",
)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def window(start: int, end: int) -> TimeWindow:
    return TimeWindow(at(start), at(end))


def van(vehicle_id: str, **changes: object) -> Vehicle:
    values: dict[str, object] = {
        "id": vehicle_id,
        "kind": VehicleKind.VAN,
        "capacity_kg": 800.0,
        "capacity_m3": 8.0,
        "shift": window(6, 18),
        "start_hub": "hub",
        "end_hub": "hub",
        "cost_per_km_cents": 40,
        "cost_per_hour_cents": 3000,
        "gross_weight_kg": 3500.0,
    }
    values.update(changes)
    return Vehicle(**values)  # type: ignore[arg-type]


def bike(vehicle_id: str, **changes: object) -> Vehicle:
    defaults: dict[str, object] = {"kind": VehicleKind.CARGO_BIKE, "capacity_kg": 150.0, "capacity_m3": 1.5}
    return van(vehicle_id, **{**defaults, "gross_weight_kg": 250.0, **changes})


def order(order_id: str, place: GeoPoint, *windows: TimeWindow, **changes: object) -> Order:
    values: dict[str, object] = {
        "id": order_id,
        "shipper": "0403.170.701",
        "recipient": ShopAddress(f"Shop {order_id}", place),
        "windows": windows or (window(7, 17),),
        "weight_kg": 20.0,
        "volume_m3": 0.2,
        "pickup": HubPickup("hub"),
        "service_s": 120,
    }
    values.update(changes)
    return Order(**values)  # type: ignore[arg-type]


def pedestrian_zone(*rules: AccessRule) -> AccessZone:
    return AccessZone("voetgangers", "Voetgangerszone", PEDESTRIAN, rules)


def request(
    *orders: Order, vehicles: tuple[Vehicle, ...], zones: tuple[AccessZone, ...] = ()
) -> PlanningRequest:
    return PlanningRequest("71022", DAY, (HUB,), vehicles, zones, orders)


def solve_plan(planning: PlanningRequest, replan: ReplanRequest | None = None, seconds: float = 0.5) -> Plan:
    points = layout(planning, replan).points
    profiles = {v.speed_profile for v in planning.vehicles}
    matrices = {p.name: haversine_matrix(points, p) for p in profiles}
    return plan(planning, matrices, PlanningSettings(time_limit_s=seconds, deterministic=True), replan=replan)


@pytest.fixture
def hasselt() -> SimpleNamespace:
    """The scenario builders, as one fixture (test modules do not import each other)."""
    return SimpleNamespace(
        day=DAY,
        hub=HUB,
        centre=CENTRE,
        at=at,
        window=window,
        van=van,
        bike=bike,
        order=order,
        pedestrian_zone=pedestrian_zone,
        request=request,
        solve=solve_plan,
    )


@pytest.fixture
def vrp_data() -> Path:
    override = os.environ.get("CITYBLOCKS_VRP_DATA")
    return (
        Path(override) if override else Path(__file__).resolve().parents[3].parent / "shared" / "data" / "vrp"
    )
