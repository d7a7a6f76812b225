"""Routes: dispatch to drivers, the views for the map and the driver's phone, and stop outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import logistics
from eventbus import UnitOfWorkFactory
from logistics import domain, records, store
from logistics.handlers.errors import Conflict, NotFound
from logistics.handlers.orders import is_staff
from logistics.handlers.planning import load_run, route_stops
from logistics.records import Row
from logistics.schemas import DispatchIn, FeatureCollection, RouteOut, StopDoneIn, StopFailedIn
from servicekit.auth import Principal


async def dispatch_run(
    uow_factory: UnitOfWorkFactory, principal: Principal, run_id: UUID, body: DispatchIn
) -> list[RouteOut]:
    now = datetime.now(UTC)
    async with uow_factory() as uow:
        run = await load_run(uow.session, principal, run_id)
        if run["status"] != "completed":
            raise Conflict(f"only a completed run can be dispatched; this one is {run['status']}")
        routes = await _routes_of(uow.session, run_id)
        for route in routes:
            driver = body.drivers.get(route["vehicle_id"], route["driver_id"])
            changes = {"status": "dispatched", "driver_id": driver, "dispatched_at": now}
            await uow.session.execute(
                update(store.routes).where(store.routes.c.id == route["id"]).values(**changes)
            )
            stops = await route_stops(uow.session, route["id"])
            open_orders = [s["order_id"] for s in stops if s["status"] == "planned"]
            table = store.orders
            await uow.session.execute(
                update(table).where(table.c.id.in_(open_orders)).values(status="dispatched", updated_at=now)
            )
            uow.emit(
                _dispatched(run, {**route, **changes}, stops, now),
                tenant=run["tenant"],
                subject=str(route["id"]),
            )
        runs = store.planning_runs
        await uow.session.execute(update(runs).where(runs.c.id == run_id).values(dispatched=True))
        return await _views(uow.session, run, await _routes_of(uow.session, run_id))


def _dispatched(run: Row, route: Row, stops: Sequence[Row], now: datetime) -> logistics.RouteDispatched:
    return logistics.RouteDispatched(
        route_id=route["id"],
        planning_run_id=run["id"],
        vehicle_id=route["vehicle_id"],
        vehicle_kind=route["vehicle_kind"],
        driver_id=route["driver_id"],
        delivery_date=run["delivery_date"],
        order_ids=list(dict.fromkeys(s["order_id"] for s in stops)),
        departure=route["departure"],
        dispatched_at=now,
    )


async def _routes_of(session: AsyncSession, run_id: UUID) -> list[Row]:
    table = store.routes
    query = select(table).where(table.c.run_id == run_id).order_by(table.c.departure, table.c.vehicle_kind)
    return list((await session.execute(query)).mappings().all())


async def _views(session: AsyncSession, run: Row, routes: Sequence[Row]) -> list[RouteOut]:
    vehicles = store.vehicles
    query = select(vehicles.c.id, vehicles.c.code).where(vehicles.c.tenant == run["tenant"])
    codes = {row.id: row.code for row in await session.execute(query)}
    views = []
    for route in routes:
        stops = await route_stops(session, route["id"])
        ids = [s["order_id"] for s in stops]
        table = store.orders
        found = (await session.execute(select(table).where(table.c.id.in_(ids)))).mappings().all()
        recipients = {row["id"]: row for row in found}
        views.append(
            records.route_out(
                route, stops, codes.get(route["vehicle_id"], ""), run["delivery_date"], recipients
            )
        )
    return views


async def run_routes(uow_factory: UnitOfWorkFactory, principal: Principal, run_id: UUID) -> list[RouteOut]:
    async with uow_factory() as uow:
        run = await load_run(uow.session, principal, run_id)
        return await _views(uow.session, run, await _routes_of(uow.session, run_id))


async def run_map(uow_factory: UnitOfWorkFactory, principal: Principal, run_id: UUID) -> FeatureCollection:
    """The run's routes as lines and its stops as points (GeoJSON), for the operator's map."""
    features: list[dict[str, Any]] = []
    for view in await run_routes(uow_factory, principal, run_id):
        features.append(records.route_feature(view))
        features += records.stop_features(view)
    return FeatureCollection(features=features)


async def _load_route(session: AsyncSession, principal: Principal, route_id: UUID) -> Row:
    """The route if the caller may see it: staff of its municipality, or the driver it was dispatched to."""
    table = store.routes
    route = (await session.execute(select(table).where(table.c.id == route_id))).mappings().first()
    if route is None or route["tenant"] != principal.tenant:
        raise NotFound(f"no route {route_id}")
    own = route["driver_id"] == principal.subject and route["status"] != "planned"
    if not (is_staff(principal) or own):
        raise NotFound(f"no route {route_id}")
    return route


async def get_route(uow_factory: UnitOfWorkFactory, principal: Principal, route_id: UUID) -> RouteOut:
    async with uow_factory() as uow:
        route = await _load_route(uow.session, principal, route_id)
        run = await load_run(uow.session, principal, route["run_id"])
        return (await _views(uow.session, run, [route]))[0]


async def driver_routes(
    uow_factory: UnitOfWorkFactory, principal: Principal, day: Any = None
) -> list[RouteOut]:
    """The caller's dispatched routes that are still current (not superseded by a re-plan)."""
    table, runs = store.routes, store.planning_runs
    query = (
        select(table)
        .join(runs, runs.c.id == table.c.run_id)
        .where(table.c.tenant == principal.tenant, table.c.driver_id == principal.subject)
        .where(table.c.status == "dispatched")
        .order_by(table.c.departure)
    )
    if day is not None:
        query = query.where(runs.c.delivery_date == day)
    async with uow_factory() as uow:
        views = []
        for route in (await uow.session.execute(query)).mappings().all():
            run = await load_run(uow.session, principal, route["run_id"])
            views += await _views(uow.session, run, [route])
        return views


async def complete_stop(
    uow_factory: UnitOfWorkFactory, principal: Principal, route_id: UUID, seq: int, body: StopDoneIn
) -> RouteOut:
    return await _record_outcome(uow_factory, principal, route_id, seq, body, None)


async def fail_stop(
    uow_factory: UnitOfWorkFactory, principal: Principal, route_id: UUID, seq: int, body: StopFailedIn
) -> RouteOut:
    return await _record_outcome(uow_factory, principal, route_id, seq, body, body)


async def _record_outcome(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    route_id: UUID,
    seq: int,
    body: StopDoneIn | StopFailedIn,
    failure: StopFailedIn | None,
) -> RouteOut:
    at = body.at or datetime.now(UTC)
    async with uow_factory() as uow:
        route = await _load_route(uow.session, principal, route_id)
        if route["status"] != "dispatched":
            raise Conflict(f"the route is {route['status']}, not dispatched")
        stop = next((s for s in await route_stops(uow.session, route_id) if s["seq"] == seq), None)
        if stop is None:
            raise NotFound(f"no stop {seq} on route {route_id}")
        if stop["status"] != "planned":
            raise Conflict(f"the stop is already {stop['status']}")
        changes = {
            "status": "failed" if failure else "done",
            "outcome_at": at,
            "reason": failure.reason if failure else None,
            "note": failure.note if failure else "",
            "proof": body.proof,
        }
        stops = store.route_stops
        await uow.session.execute(
            update(stops).where(stops.c.route_id == route_id, stops.c.seq == seq).values(**changes)
        )
        order = (
            (await uow.session.execute(select(store.orders).where(store.orders.c.id == stop["order_id"])))
            .mappings()
            .one()
        )
        await _update_order(uow.session, stop, failure, at)
        zones = await _zones_of(uow.session, route["tenant"], order)
        uow.emit(
            _stop_event(route, stop, order, body, failure, at, zones),
            tenant=route["tenant"],
            subject=str(stop["order_id"]),
        )
        run = await load_run(uow.session, principal, route["run_id"])
        return (await _views(uow.session, run, [route]))[0]


async def _update_order(session: AsyncSession, stop: Row, failure: StopFailedIn | None, at: datetime) -> None:
    reason: str = ""
    if failure is not None:
        status, reason = "failed", failure.reason
    elif stop["kind"] == "delivery":
        status = "delivered"
    else:
        status = "picked_up"
    table = store.orders
    await session.execute(
        update(table)
        .where(table.c.id == stop["order_id"])
        .values(status=status, status_reason=reason, updated_at=at)
    )


async def _zones_of(session: AsyncSession, tenant: str, order: Row) -> list[str]:
    """Names of the tenant's access zones the order's place lies in (for statistics per zone)."""
    if order["lat"] is None or order["lon"] is None:
        return []
    place = domain.GeoPoint(order["lat"], order["lon"])
    table = store.zones
    query = select(table.c.name, table.c.geometry).where(table.c.tenant == tenant)
    rows = (await session.execute(query)).all()
    return sorted(
        name for name, geometry in rows if domain.area_from_geojson(geometry, "geometry").contains(place)
    )


def _stop_event(
    route: Row,
    stop: Row,
    order: Row,
    body: StopDoneIn | StopFailedIn,
    failure: StopFailedIn | None,
    at: datetime,
    zones: list[str],
) -> logistics.StopCompleted | logistics.StopFailed:
    common = {
        "order_id": stop["order_id"],
        "route_id": route["id"],
        "vehicle_id": route["vehicle_id"],
        "vehicle_kind": route["vehicle_kind"],
        "driver_id": route["driver_id"],
        "stop_kind": stop["kind"],
        "shipper_id": order["shipper_id"],
        "recipient": logistics.Recipient.model_validate(order["recipient"]),
        "proof": body.proof,
        "zones": zones,
    }
    if failure is not None:
        return logistics.StopFailed(**common, reason=failure.reason, note=failure.note, failed_at=at)
    return logistics.StopCompleted(
        **common, weight_kg=order["weight_kg"], distance_m=route["distance_m"], completed_at=at
    )
