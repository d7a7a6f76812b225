"""A finished plan saved in one transaction: routes, stops, orders left out, statuses and the events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from sqlalchemy import insert, select, update

from contracts import logistics
from eventbus import UnitOfWork, UnitOfWorkFactory
from logistics import domain, store
from logistics.records import Row
from logistics.settings import Settings
from logistics.validator import haversine_travel, validate_plan

if TYPE_CHECKING:
    from logistics.handlers.planning import Job


async def save_plan(
    uow_factory: UnitOfWorkFactory, settings: Settings, job: Job, plan: domain.Plan, seconds: float
) -> None:
    run = job.run
    now = datetime.now(UTC)
    # The independent check recomputes offline travel times; road-network times it cannot redo.
    offline = settings.osrm_url is None
    travel = haversine_travel(settings.detour_factor)
    violations = await asyncio.to_thread(validate_plan, job.request, plan, travel) if offline else []
    async with uow_factory() as uow:
        dispatch = await _supersede(uow, run)
        summaries = [await _save_route(uow, job, route, dispatch, now) for route in plan.routes]
        left_out = await _save_left_out(uow, job, plan, now)
        planned = sum(s.deliveries for s in summaries)
        summary = {
            "routes": len(summaries),
            "vehicles": len(summaries),
            "orders_planned": planned,
            "orders_left_out": left_out,
            "distance_m": plan.distance_m,
            "solver_seconds": round(seconds, 2),
            "violations": [v.message for v in violations][:20],
        }
        table = store.planning_runs
        await uow.session.execute(
            update(table)
            .where(table.c.id == run["id"])
            .values(status="completed", summary=summary, finished_at=now, dispatched=dispatch)
        )
        event = logistics.RoutesPlanned(
            planning_run_id=run["id"],
            delivery_date=run["delivery_date"],
            wave=run["wave"],
            replan_of=run["replan_of"],
            routes=summaries,
            orders_planned=planned,
            orders_left_out=left_out,
            distance_m=plan.distance_m,
            solver_seconds=round(seconds, 3),
            planned_at=now,
        )
        uow.emit(event, tenant=run["tenant"], subject=str(run["id"]))


async def _supersede(uow: UnitOfWork, run: Row) -> bool:
    """Earlier completed runs of the day and wave give way; a re-plan of a dispatched run dispatches too."""
    table = store.planning_runs
    query = select(table.c.id, table.c.dispatched).where(
        table.c.tenant == run["tenant"],
        table.c.delivery_date == run["delivery_date"],
        table.c.wave == run["wave"],
        table.c.status == "completed",
        table.c.id != run["id"],
    )
    earlier = (await uow.session.execute(query)).all()
    ids = [row.id for row in earlier]
    if not ids:
        return False
    await uow.session.execute(update(table).where(table.c.id.in_(ids)).values(status="superseded"))
    routes = store.routes
    await uow.session.execute(update(routes).where(routes.c.run_id.in_(ids)).values(status="superseded"))
    return any(row.dispatched for row in earlier if row.id == run["replan_of"])


async def _save_route(
    uow: UnitOfWork, job: Job, route: domain.Route, dispatch: bool, now: datetime
) -> logistics.RouteSummary:
    run, vehicle = job.run, job.vehicles[route.vehicle_id]
    route_id = uuid4()
    start = route.start_location or job.request.hub(route.start_hub).location
    await uow.session.execute(
        insert(store.routes).values(
            id=route_id,
            run_id=run["id"],
            tenant=run["tenant"],
            vehicle_id=vehicle["id"],
            vehicle_kind=vehicle["kind"],
            driver_id=vehicle["driver_id"],
            status="dispatched" if dispatch else "planned",
            start_hub_id=UUID(route.start_hub),
            end_hub_id=UUID(route.end_hub),
            start_lat=start.lat,
            start_lon=start.lon,
            departure=route.departure,
            arrival=route.arrival,
            distance_m=route.distance_m,
            duration_s=route.duration_s,
            start_load_kg=route.start_load_kg,
            start_load_m3=route.start_load_m3,
            dispatched_at=now if dispatch else None,
        )
    )
    if route.stops:
        rows = [_stop_row(job, route_id, seq, stop) for seq, stop in enumerate(route.stops)]
        await uow.session.execute(insert(store.route_stops), rows)
    open_orders = [UUID(s.order_id) for s in route.stops if not s.completed]
    await _mark_orders(uow, open_orders, "dispatched" if dispatch else "planned", now)
    summary = logistics.RouteSummary(
        route_id=route_id,
        vehicle_id=vehicle["id"],
        vehicle_kind=vehicle["kind"],
        stops=len(route.stops),
        deliveries=sum(1 for s in route.stops if s.kind is domain.StopKind.DELIVERY and not s.completed),
        distance_m=route.distance_m,
        duration_s=route.duration_s,
        departure=route.departure,
        arrival=route.arrival,
    )
    if dispatch:
        uow.emit(dispatched(run, route_id, vehicle, route, now), tenant=run["tenant"], subject=str(route_id))
    return summary


def _stop_row(job: Job, route_id: UUID, seq: int, stop: domain.PlannedStop) -> dict[str, Any]:
    done = job.previous_stops.get((stop.order_id, stop.kind.value)) if stop.completed else None
    return {
        "route_id": route_id,
        "seq": seq,
        "order_id": UUID(stop.order_id),
        "kind": stop.kind.value,
        "lat": stop.location.lat,
        "lon": stop.location.lon,
        "arrival": stop.arrival,
        "service_start": stop.service_start,
        "departure": stop.departure,
        "load_kg": stop.load_kg,
        "load_m3": stop.load_m3,
        "status": done["status"] if done else "planned",
        "outcome_at": done["outcome_at"] if done else None,
        "reason": done["reason"] if done else None,
        "note": done["note"] if done else "",
        "proof": done["proof"] if done else None,
    }


def dispatched(
    run: Row, route_id: UUID, vehicle: Row, route: domain.Route, now: datetime
) -> logistics.RouteDispatched:
    return logistics.RouteDispatched(
        route_id=route_id,
        planning_run_id=run["id"],
        vehicle_id=vehicle["id"],
        vehicle_kind=vehicle["kind"],
        driver_id=vehicle["driver_id"],
        delivery_date=run["delivery_date"],
        order_ids=list(dict.fromkeys(UUID(s.order_id) for s in route.stops)),
        departure=route.departure,
        dispatched_at=now,
    )


async def _mark_orders(uow: UnitOfWork, order_ids: list[UUID], status: str, now: datetime) -> None:
    if order_ids:
        table = store.orders
        await uow.session.execute(
            update(table)
            .where(table.c.id.in_(order_ids))
            .values(status=status, status_reason="", updated_at=now)
        )


async def _save_left_out(uow: UnitOfWork, job: Job, plan: domain.Plan, now: datetime) -> int:
    run = job.run
    shippers = {o.id: o.shipper for o in job.request.orders}
    left = [(u.order_id, u.reason.value, u.detail, shippers[u.order_id]) for u in plan.unassigned]
    waiting = domain.UnassignedReason.STALL_NOT_ALLOCATED.value
    left += [
        (str(o["id"]), waiting, "the trader's stall is not known yet", o["shipper_id"]) for o in job.waiting
    ]
    for order_id, reason, detail, shipper in left:
        await uow.session.execute(
            insert(store.unassigned_orders).values(
                run_id=run["id"], order_id=UUID(order_id), reason=reason, detail=detail[:300]
            )
        )
        table = store.orders
        await uow.session.execute(
            update(table)
            .where(table.c.id == UUID(order_id), table.c.status.not_in(("delivered", "failed", "cancelled")))
            .values(status="left_out", status_reason=reason, updated_at=now)
        )
        event = logistics.OrderUndeliverable(
            order_id=UUID(order_id),
            planning_run_id=run["id"],
            shipper_id=shipper,
            delivery_date=run["delivery_date"],
            reason=reason,
            detail=detail[:300],
            decided_at=now,
        )
        uow.emit(event, tenant=run["tenant"], subject=order_id)
    return len(left)
