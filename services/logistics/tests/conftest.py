"""A small Hasselt scenario, planning on offline matrices, and the running service for API tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from eventbus.tables import outbox
from logistics.app import create_app
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
from logistics.settings import Settings
from logistics.solver import PlanningSettings, layout, plan
from servicekit.devidp import DevIdentityProvider, demo_user, demo_user_id

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


HASSELT_RING = {
    "type": "Polygon",
    "coordinates": [[[5.330, 50.926], [5.346, 50.926], [5.346, 50.935], [5.330, 50.935], [5.330, 50.926]]],
}


class Api:
    """The service app behind an httpx client, with demo users' tokens and a look into its outbox."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, settings: Settings) -> None:
        self.app = app
        self.client = client
        self.identity = DevIdentityProvider.from_settings(settings)

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.identity.issue(demo_user(username))}"}

    async def call(self, method: str, path: str, username: str, json: Any = None) -> httpx.Response:
        return await self.client.request(method, f"/v1{path}", headers=self.headers(username), json=json)

    async def ok(self, method: str, path: str, username: str, json: Any = None) -> Any:
        response = await self.call(method, path, username, json)
        assert response.status_code < 300, response.text
        return response.json()

    async def events(self, name: str) -> list[dict[str, Any]]:
        uow_factory = self.app.state.uow_factory
        async with uow_factory() as uow:
            query = select(outbox.c.data).where(outbox.c.type.like(f"%.logistics.{name}.v%"))
            return [row[0] for row in (await uow.session.execute(query.order_by(outbox.c.seq))).all()]

    async def finished_run(self, run_id: str, username: str = "hasselt.operator") -> Any:
        async with asyncio.timeout(30):
            while True:
                run = await self.ok("GET", f"/planning-runs/{run_id}", username)
                if run["status"] in ("completed", "failed"):
                    return run
                await asyncio.sleep(0.05)

    async def fleet(
        self, username: str = "hasselt.operator", driver: str = "hasselt.driver"
    ) -> dict[str, Any]:
        """A hub outside the ring, a van and a cargo bike (driven by `driver`), the ring as a zone."""
        hub = await self.ok(
            "POST",
            "/hubs",
            username,
            {"code": "hub", "name": "Hub Kuringen", "location": {"lat": 50.9420, "lon": 5.3050}},
        )
        van = await self.ok("POST", "/vehicles", username, vehicle_body("van-1", "van", hub["id"]))
        bike_body = vehicle_body("bike-1", "cargo_bike", hub["id"], driver_id=demo_user_id(driver))
        bike = await self.ok("POST", "/vehicles", username, bike_body)
        zone = await self.ok(
            "POST",
            "/zones",
            username,
            {
                "code": "centrum",
                "name": "Binnen de Groene Boulevard",
                "geometry": HASSELT_RING,
                "rules": [
                    {"kind": "van", "windows": [{"start": "06:00", "end": "09:00"}]},
                    {"kind": "cargo_bike"},
                ],
            },
        )
        return {"hub": hub, "van": van, "bike": bike, "zone": zone}


def vehicle_body(code: str, kind: str, hub_id: str, **changes: Any) -> dict[str, Any]:
    big = kind != "cargo_bike"
    return {
        "code": code,
        "name": code,
        "kind": kind,
        "capacity_kg": 800 if big else 150,
        "capacity_m3": 8 if big else 1.5,
        "gross_weight_kg": 3500 if big else 250,
        "shift": {"start": "06:00", "end": "18:00"},
        "start_hub_id": hub_id,
        **changes,
    }


def order_body(
    hub_id: str, n: int, lat: float = 50.9300, lon: float = 5.3380, **changes: Any
) -> dict[str, Any]:
    return {
        "reference": f"R{n}",
        "recipient": {
            "kind": "shop",
            "name": f"Winkel {n}",
            "address": f"Hoogstraat {n}",
            "location": {"lat": lat, "lon": lon},
        },
        "delivery_date": DAY.date().isoformat(),
        "windows": [{"start": at(8).isoformat(), "end": at(16).isoformat()}],
        "weight_kg": 12.5,
        "volume_m3": 0.1,
        "hub_id": hub_id,
        **changes,
    }


@pytest.fixture
def service_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        solver_time_limit_s=1.0,
        solver_deterministic=True,
        solver_in_process=False,
        log_json=False,
    )


@pytest.fixture
async def api(service_settings: Settings) -> AsyncIterator[Api]:
    app = create_app(service_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://logistics") as client:
            yield Api(app, client, service_settings)


@pytest.fixture
def make_api() -> Callable[[Settings], AbstractAsyncContextManager[Api]]:
    """An Api over any settings (the PostgreSQL tier passes its database URL)."""

    @asynccontextmanager
    async def running(settings: Settings) -> AsyncIterator[Api]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://logistics") as client:
                yield Api(app, client, settings)

    return running


@pytest.fixture
def bodies() -> SimpleNamespace:
    def iso_window(start: int, end: int) -> dict[str, str]:
        return {"start": at(start).isoformat(), "end": at(end).isoformat()}

    return SimpleNamespace(
        vehicle=vehicle_body, order=order_body, ring=HASSELT_RING, day=DAY, at=at, window=iso_window
    )
