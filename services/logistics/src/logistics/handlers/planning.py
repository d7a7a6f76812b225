"""Planning runs: queued by a request, solved off the event loop with progress, saved with their routes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eventbus import UnitOfWorkFactory
from logistics import domain, records, store
from logistics.handlers import saving
from logistics.handlers.errors import Conflict, NotFound
from logistics.handlers.orders import FINAL
from logistics.records import Row
from logistics.routing import MatrixProvider, OsrmClient
from logistics.schemas import PlanningRunIn, PlanningRunOut, ReplanIn, UnassignedOut
from logistics.settings import Settings
from logistics.solver import PlanningSettings, Progress, layout, plan_in_thread
from logistics.solver.worker import plan_in_process
from servicekit.auth import Principal
from servicekit.service import ServiceContext

log = logging.getLogger(__name__)
# Another replica may still be solving a run younger than its time limit plus this margin.
ABANDONED_AFTER_S = 120


@dataclass
class Job:
    """What one run plans: the request, the re-planning context, the rows it came from."""

    run: Row
    request: domain.PlanningRequest
    replan: domain.ReplanRequest | None
    vehicles: Mapping[str, Row]
    waiting: Sequence[Row] = ()
    previous_stops: Mapping[tuple[str, str], Row] = field(default_factory=dict)


async def start_run(
    uow_factory: UnitOfWorkFactory, settings: Settings, principal: Principal, body: PlanningRunIn
) -> PlanningRunOut:
    row = _new_run(principal, body.delivery_date, body.wave, body.objective, body.time_limit_s, settings)
    async with uow_factory() as uow:
        table = store.planning_runs
        dispatched = await uow.session.scalar(
            select(table.c.id).where(
                table.c.tenant == principal.tenant,
                table.c.delivery_date == body.delivery_date,
                table.c.wave == body.wave,
                table.c.status == "completed",
                table.c.dispatched.is_(True),
            )
        )
        if dispatched is not None:
            # Drivers are on the road with that plan: only a re-plan keeps their completed stops.
            raise Conflict(f"run {dispatched} of this day is dispatched; re-plan it instead")
        await uow.session.execute(insert(table).values(**row))
    return _run_out(row, [])


def _new_run(
    principal: Principal, day: Any, wave: str, objective: str, limit: float | None, settings: Settings
) -> dict[str, Any]:
    return {
        "id": uuid4(),
        "tenant": principal.tenant,
        "delivery_date": day,
        "wave": wave,
        "objective": objective,
        "time_limit_s": limit or settings.solver_time_limit_s,
        "status": "queued",
        "replan_of": None,
        "replan_at": None,
        "broken_down": [],
        "progress": None,
        "summary": None,
        "error": None,
        "dispatched": False,
        "requested_by": principal.subject,
        "created_at": datetime.now(UTC),
        "started_at": None,
        "finished_at": None,
    }


async def start_replan(
    uow_factory: UnitOfWorkFactory, settings: Settings, principal: Principal, run_id: UUID, body: ReplanIn
) -> PlanningRunOut:
    async with uow_factory() as uow:
        previous = await load_run(uow.session, principal, run_id)
        if previous["status"] != "completed":
            raise Conflict(f"only a completed run can be re-planned; this one is {previous['status']}")
        row = _new_run(
            principal,
            previous["delivery_date"],
            previous["wave"],
            previous["objective"],
            body.time_limit_s,
            settings,
        )
        row.update(
            replan_of=run_id,
            replan_at=body.at or datetime.now(UTC),
            broken_down=[str(v) for v in body.broken_down],
        )
        await uow.session.execute(insert(store.planning_runs).values(**row))
    return _run_out(row, [])


async def load_run(session: AsyncSession, principal: Principal, run_id: UUID) -> Row:
    table = store.planning_runs
    row = (await session.execute(select(table).where(table.c.id == run_id))).mappings().first()
    if row is None or row["tenant"] != principal.tenant:
        raise NotFound(f"no planning run {run_id}")
    return row


async def get_run(uow_factory: UnitOfWorkFactory, principal: Principal, run_id: UUID) -> PlanningRunOut:
    async with uow_factory() as uow:
        row = await load_run(uow.session, principal, run_id)
        table = store.unassigned_orders
        left = (await uow.session.execute(select(table).where(table.c.run_id == run_id))).mappings().all()
    return _run_out(row, left)


async def list_runs(
    uow_factory: UnitOfWorkFactory, principal: Principal, day: Any = None
) -> list[PlanningRunOut]:
    table = store.planning_runs
    query = select(table).where(table.c.tenant == principal.tenant).order_by(table.c.created_at)
    if day is not None:
        query = query.where(table.c.delivery_date == day)
    async with uow_factory() as uow:
        return [_run_out(row, []) for row in (await uow.session.execute(query)).mappings()]


def _run_out(row: Row, left: Sequence[Row]) -> PlanningRunOut:
    values = {name: row[name] for name in PlanningRunOut.model_fields if name in row}
    unassigned = [UnassignedOut(order_id=u["order_id"], reason=u["reason"], detail=u["detail"]) for u in left]
    return PlanningRunOut(**values, unassigned=unassigned)


async def execute_run(
    uow_factory: UnitOfWorkFactory, settings: Settings, run_id: UUID, slots: asyncio.Semaphore | None = None
) -> None:
    """Plan a queued run to the end, once a slot is free; every failure ends as a failed run, never stuck."""
    try:
        async with slots or asyncio.Semaphore():
            job = await _prepare(uow_factory, settings, run_id)
            started = time.monotonic()
            plan = await _solve(uow_factory, settings, job)
            await saving.save_plan(uow_factory, settings, job, plan, time.monotonic() - started)
    except asyncio.CancelledError:
        await _finish_failed(uow_factory, run_id, "the service stopped during planning")
        raise
    except Exception as error:
        log.exception("planning run %s failed", run_id)
        await _finish_failed(uow_factory, run_id, _describe(error))


def _describe(error: Exception) -> str:
    if isinstance(error, domain.InvalidField):
        return f"{error.field}: {error.message}"
    return f"{type(error).__name__}: the plan could not be made"


async def fail_abandoned_runs(context: ServiceContext) -> None:
    """At start: runs left queued or running by a stopped process, and past any time limit, end as failed."""
    now = datetime.now(UTC)
    table = store.planning_runs
    async with context.uow_factory() as uow:
        query = select(table.c.id, table.c.created_at, table.c.time_limit_s).where(
            table.c.status.in_(("queued", "running"))
        )
        for run_id, created, limit in (await uow.session.execute(query)).all():
            if (now - created).total_seconds() > limit + ABANDONED_AFTER_S:
                await uow.session.execute(
                    update(table)
                    .where(table.c.id == run_id)
                    .values(status="failed", error="the service stopped during planning", finished_at=now)
                )


async def _finish_failed(uow_factory: UnitOfWorkFactory, run_id: UUID, message: str) -> None:
    async with uow_factory() as uow:
        await uow.session.execute(
            update(store.planning_runs)
            .where(store.planning_runs.c.id == run_id)
            .values(status="failed", error=message, finished_at=datetime.now(UTC))
        )


async def _prepare(uow_factory: UnitOfWorkFactory, settings: Settings, run_id: UUID) -> Job:
    async with uow_factory() as uow:
        session = uow.session
        table = store.planning_runs
        run = (await session.execute(select(table).where(table.c.id == run_id))).mappings().one()
        await session.execute(
            update(table).where(table.c.id == run_id).values(status="running", started_at=datetime.now(UTC))
        )
        job = await _inputs(session, settings, run)
        if run["replan_of"] is not None:
            await _add_replan(session, job)
    job.request.validate()
    return job


async def _inputs(session: AsyncSession, settings: Settings, run: Row) -> Job:
    tenant, day, zone = run["tenant"], run["delivery_date"], settings.zone
    hubs = await _rows(session, store.hubs, tenant)
    vehicles = [v for v in await _rows(session, store.vehicles, tenant) if v["active"]]
    zones = await _rows(session, store.zones, tenant)
    table = store.orders
    query = select(table).where(table.c.tenant == tenant, table.c.delivery_date == day)
    if run["wave"]:
        query = query.where(table.c.wave == run["wave"])
    order_rows = (await session.execute(query.order_by(table.c.created_at))).mappings().all()
    fresh = run["replan_of"] is None
    wanted = [o for o in order_rows if o["status"] != "cancelled" and not (fresh and o["status"] in FINAL)]
    request = domain.PlanningRequest(
        tenant=tenant,
        origin=records.day_start(day, zone),
        hubs=tuple(records.hub(h, day, zone) for h in hubs),
        vehicles=tuple(records.vehicle(v, day, zone) for v in vehicles),
        zones=tuple(records.zone(z, day, zone) for z in zones),
        orders=tuple(records.order(o) for o in wanted if o["lat"] is not None),
        objective=domain.Objective(run["objective"]),
    )
    waiting = [o for o in wanted if o["lat"] is None]
    return Job(run, request, None, {str(v["id"]): v for v in vehicles}, waiting)


async def _rows(session: AsyncSession, table: Any, tenant: str) -> list[Row]:
    return list((await session.execute(select(table).where(table.c.tenant == tenant))).mappings().all())


async def _add_replan(session: AsyncSession, job: Job) -> None:
    """Completed stops stay, departed vehicles start where they are, the old plan is the starting point."""
    run = job.run
    at: datetime = run["replan_at"]
    routes = (
        (await session.execute(select(store.routes).where(store.routes.c.run_id == run["replan_of"])))
        .mappings()
        .all()
    )
    plan_routes, outcomes, states = [], [], []
    previous_stops: dict[tuple[str, str], Row] = {}
    for route in routes:
        stops = await route_stops(session, route["id"])
        plan_routes.append(records.route(route, stops))
        finished = [s for s in stops if s["status"] != "planned"]
        for stop in finished:
            previous_stops[(str(stop["order_id"]), stop["kind"])] = stop
            outcomes.append(_outcome(stop))
        state = _state(route, finished, at, run["broken_down"])
        if state is not None:
            states.append(state)
    states += [
        domain.VehicleState(v, domain.GeoPoint(0, 0), at, broken_down=True)
        for v in run["broken_down"]
        if v not in {s.vehicle_id for s in states}
    ]
    departed = {s.vehicle_id for s in states}
    job.request = replace(job.request, vehicles=_still_on_shift(job.request.vehicles, departed, at))
    previous = domain.Plan(tuple(plan_routes), ())
    job.replan = domain.ReplanRequest(job.request, previous, tuple(outcomes), tuple(states))
    job.previous_stops = previous_stops


def _outcome(stop: Row) -> domain.StopOutcome:
    failed = stop["status"] == "failed"
    return domain.StopOutcome(
        order_id=str(stop["order_id"]),
        kind=domain.StopKind(stop["kind"]),
        status=domain.StopStatus.FAILED if failed else domain.StopStatus.DONE,
        at=stop["outcome_at"],
        reason=domain.FailureReason(stop["reason"]) if failed else None,
        proof=stop["proof"],
    )


def _state(
    route: Row, finished: Sequence[Row], at: datetime, broken: Sequence[str]
) -> domain.VehicleState | None:
    """A vehicle on its way (dispatched and left, or with stops done) continues from its last stop."""
    vehicle_id = str(route["vehicle_id"])
    left = route["status"] == "dispatched" and route["departure"] <= at
    if not (finished or left or vehicle_id in broken):
        return None
    last = finished[-1] if finished else None
    place = (
        domain.GeoPoint(last["lat"], last["lon"])
        if last
        else domain.GeoPoint(route["start_lat"], route["start_lon"])
    )
    available = max(at, last["outcome_at"]) if last else at
    return domain.VehicleState(vehicle_id, place, available, broken_down=vehicle_id in broken)


def _still_on_shift(
    vehicles: Sequence[domain.Vehicle], departed: set[str], at: datetime
) -> tuple[domain.Vehicle, ...]:
    """Vehicles still at their hub can leave from `at` on; those whose shift is over drop out."""
    kept = []
    for vehicle in vehicles:
        if vehicle.id in departed:
            kept.append(vehicle)
        elif vehicle.shift.end > at:
            start = max(vehicle.shift.start, at)
            kept.append(replace(vehicle, shift=domain.TimeWindow(start, vehicle.shift.end)))
    return tuple(kept)


async def route_stops(session: AsyncSession, route_id: UUID) -> list[Row]:
    table = store.route_stops
    query = select(table).where(table.c.route_id == route_id).order_by(table.c.seq)
    return list((await session.execute(query)).mappings().all())


async def _solve(uow_factory: UnitOfWorkFactory, settings: Settings, job: Job) -> domain.Plan:
    request = job.request
    osrm = OsrmClient(settings.osrm_url, settings.osrm_timeout_s) if settings.osrm_url else None
    provider = MatrixProvider(osrm, detour_factor=settings.detour_factor)
    points = layout(request, job.replan).points
    matrices = await provider.matrices(points, [v.speed_profile for v in request.vehicles])
    latest: list[Progress] = []
    writer = asyncio.create_task(_write_progress(uow_factory, settings, job.run["id"], latest))
    planning = PlanningSettings(
        time_limit_s=job.run["time_limit_s"],
        deterministic=settings.solver_deterministic,
        parallel_searches=settings.solver_parallel_searches,
    )
    run = plan_in_process if settings.solver_in_process else plan_in_thread
    try:
        return await run(request, matrices, planning, replan=job.replan, on_progress=latest.append)
    finally:
        writer.cancel()


async def _write_progress(
    uow_factory: UnitOfWorkFactory, settings: Settings, run_id: UUID, latest: list[Progress]
) -> None:
    """Every interval, the search's latest progress goes to the run (the solver thread only appends)."""
    written: Progress | None = None
    while True:
        await asyncio.sleep(settings.progress_interval_s)
        if not latest or latest[-1] is written:
            continue
        written = latest[-1]
        progress = {
            "objective": written.objective,
            "elapsed_s": round(written.elapsed_s, 2),
            "vehicles": written.vehicles,
            "phase": written.phase,
            "solutions": len(latest),
        }
        async with uow_factory() as uow:
            table = store.planning_runs
            await uow.session.execute(update(table).where(table.c.id == run_id).values(progress=progress))
