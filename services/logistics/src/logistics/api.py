"""The logistics HTTP API under /v1: fleet, zones, orders, planning runs, routes for the map and drivers."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, cast
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request

from logistics.handlers import fleet, orders, planning, routes
from logistics.schemas import (
    CancelIn,
    DispatchIn,
    FeatureCollection,
    HubIn,
    HubOut,
    OrderIn,
    OrderOut,
    PlanningRunIn,
    PlanningRunOut,
    ReplanIn,
    RouteOut,
    StopDoneIn,
    StopFailedIn,
    VehicleIn,
    VehicleOut,
    ZoneIn,
    ZoneOut,
)
from logistics.settings import Settings
from servicekit.auth import Principal, require_roles
from servicekit.service import Context, CurrentSettings, UowFactory

router = APIRouter(prefix="/v1")
Staff = Annotated[Principal, Depends(require_roles("operator", "city_admin"))]
Shipping = Annotated[Principal, Depends(require_roles("operator", "city_admin", "shipper"))]
Driving = Annotated[Principal, Depends(require_roles("driver", "operator", "city_admin"))]
Day = Annotated[date | None, Query(alias="date")]


def _settings(settings: CurrentSettings) -> Settings:
    return cast(Settings, settings)


def _planning_slots(request: Request, settings: Settings) -> asyncio.Semaphore:
    """The app's bound on runs solving at once, made on first use (inside the running event loop)."""
    slots: asyncio.Semaphore | None = getattr(request.app.state, "planning_slots", None)
    if slots is None:
        slots = asyncio.Semaphore(settings.max_concurrent_runs)
        request.app.state.planning_slots = slots
    return slots


OwnSettings = Annotated[Settings, Depends(_settings)]


@router.post("/hubs", status_code=201, tags=["fleet"])
async def create_hub(body: HubIn, principal: Staff, uow_factory: UowFactory) -> HubOut:
    return await fleet.create_hub(uow_factory, principal, body)


@router.get("/hubs", tags=["fleet"])
async def list_hubs(principal: Staff, uow_factory: UowFactory) -> list[HubOut]:
    return await fleet.list_hubs(uow_factory, principal)


@router.post("/vehicles", status_code=201, tags=["fleet"])
async def create_vehicle(body: VehicleIn, principal: Staff, uow_factory: UowFactory) -> VehicleOut:
    return await fleet.create_vehicle(uow_factory, principal, body)


@router.get("/vehicles", tags=["fleet"])
async def list_vehicles(principal: Staff, uow_factory: UowFactory) -> list[VehicleOut]:
    return await fleet.list_vehicles(uow_factory, principal)


@router.post("/zones", status_code=201, tags=["zones"])
async def create_zone(body: ZoneIn, principal: Staff, uow_factory: UowFactory) -> ZoneOut:
    return await fleet.create_zone(uow_factory, principal, body)


@router.get("/zones", tags=["zones"], summary="Access zones as a GeoJSON FeatureCollection")
async def list_zones(principal: Staff, uow_factory: UowFactory) -> FeatureCollection:
    return await fleet.list_zones(uow_factory, principal)


@router.get("/zones/{zone_id}", tags=["zones"])
async def get_zone(zone_id: UUID, principal: Staff, uow_factory: UowFactory) -> ZoneOut:
    return await fleet.get_zone(uow_factory, principal, zone_id)


@router.post("/orders", status_code=201, tags=["orders"])
async def place_order(
    body: OrderIn, principal: Shipping, uow_factory: UowFactory, settings: OwnSettings
) -> OrderOut:
    return await orders.place_order(uow_factory, settings, principal, body)


@router.get("/orders", tags=["orders"], summary="The municipality's orders (a shipper sees only their own)")
async def list_orders(
    principal: Shipping, uow_factory: UowFactory, day: Day = None, status: str | None = None
) -> list[OrderOut]:
    return await orders.list_orders(uow_factory, principal, day, status)


@router.get("/orders/{order_id}", tags=["orders"])
async def get_order(order_id: UUID, principal: Shipping, uow_factory: UowFactory) -> OrderOut:
    return await orders.get_order(uow_factory, principal, order_id)


@router.post("/orders/{order_id}/cancel", tags=["orders"])
async def cancel_order(
    order_id: UUID, principal: Shipping, uow_factory: UowFactory, body: CancelIn | None = None
) -> OrderOut:
    return await orders.cancel_order(uow_factory, principal, order_id, body.reason if body else "")


@router.post("/planning-runs", status_code=202, tags=["planning"], summary="Start planning a day (or wave)")
async def start_planning_run(
    body: PlanningRunIn,
    principal: Staff,
    uow_factory: UowFactory,
    settings: OwnSettings,
    context: Context,
    background: BackgroundTasks,
    request: Request,
) -> PlanningRunOut:
    run = await planning.start_run(uow_factory, settings, principal, body)
    # The run's own work is the service's, not the caller's: the plain factory, outside any request audit.
    slots = _planning_slots(request, settings)
    background.add_task(planning.execute_run, context.uow_factory, settings, run.id, slots)
    return run


@router.get("/planning-runs", tags=["planning"])
async def list_planning_runs(
    principal: Staff, uow_factory: UowFactory, day: Day = None
) -> list[PlanningRunOut]:
    return await planning.list_runs(uow_factory, principal, day)


@router.get(
    "/planning-runs/{run_id}", tags=["planning"], summary="A run's status, progress and orders left out"
)
async def get_planning_run(run_id: UUID, principal: Staff, uow_factory: UowFactory) -> PlanningRunOut:
    return await planning.get_run(uow_factory, principal, run_id)


@router.post("/planning-runs/{run_id}/replan", status_code=202, tags=["planning"])
async def replan(
    run_id: UUID,
    body: ReplanIn,
    principal: Staff,
    uow_factory: UowFactory,
    settings: OwnSettings,
    context: Context,
    background: BackgroundTasks,
    request: Request,
) -> PlanningRunOut:
    run = await planning.start_replan(uow_factory, settings, principal, run_id, body)
    slots = _planning_slots(request, settings)
    background.add_task(planning.execute_run, context.uow_factory, settings, run.id, slots)
    return run


@router.get("/planning-runs/{run_id}/routes", tags=["planning"])
async def run_routes(run_id: UUID, principal: Staff, uow_factory: UowFactory) -> list[RouteOut]:
    return await routes.run_routes(uow_factory, principal, run_id)


@router.get("/planning-runs/{run_id}/map", tags=["planning"], summary="Routes and stops as GeoJSON")
async def run_map(run_id: UUID, principal: Staff, uow_factory: UowFactory) -> FeatureCollection:
    return await routes.run_map(uow_factory, principal, run_id)


@router.post(
    "/planning-runs/{run_id}/dispatch", tags=["planning"], summary="Hand the routes to their drivers"
)
async def dispatch(
    run_id: UUID, principal: Staff, uow_factory: UowFactory, body: DispatchIn | None = None
) -> list[RouteOut]:
    return await routes.dispatch_run(uow_factory, principal, run_id, body or DispatchIn())


@router.get("/driver/routes", tags=["driver"], summary="The caller's dispatched, current routes")
async def my_routes(principal: Driving, uow_factory: UowFactory, day: Day = None) -> list[RouteOut]:
    return await routes.driver_routes(uow_factory, principal, day)


@router.get("/routes/{route_id}", tags=["driver"])
async def get_route(route_id: UUID, principal: Driving, uow_factory: UowFactory) -> RouteOut:
    return await routes.get_route(uow_factory, principal, route_id)


@router.post("/routes/{route_id}/stops/{seq}/done", tags=["driver"])
async def stop_done(
    route_id: UUID, seq: int, principal: Driving, uow_factory: UowFactory, body: StopDoneIn | None = None
) -> RouteOut:
    return await routes.complete_stop(uow_factory, principal, route_id, seq, body or StopDoneIn())


@router.post("/routes/{route_id}/stops/{seq}/failed", tags=["driver"])
async def stop_failed(
    route_id: UUID, seq: int, body: StopFailedIn, principal: Driving, uow_factory: UowFactory
) -> RouteOut:
    return await routes.fail_stop(uow_factory, principal, route_id, seq, body)
