"""Allocation runs of a market day (concept and final, CP-SAT off the event loop) and the release round."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import market as contract
from eventbus import UnitOfWorkFactory
from market import domain, models, store
from market.allocation import allocate, release_round
from market.greedy import allocate_greedy
from market.handlers.loading import (
    day_times,
    domain_plan,
    field_problem,
    load_day,
    load_trader,
    place_of,
    utc_now,
)
from servicekit.auth import Principal
from servicekit.problems import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayInputs:
    """Everything read from the database for one allocation, so the solve runs without a transaction open."""

    day: Any
    market: Any
    traders: Mapping[str, Any]
    source: domain.DayAllocationInput
    final: Any | None
    applications: tuple[Any, ...] = ()


async def _traders(session: AsyncSession, tenant: str) -> dict[str, Any]:
    rows = await session.execute(select(store.traders).where(store.traders.c.tenant == tenant))
    return {str(row.id): row for row in rows}


async def _requests(
    session: AsyncSession, day: Any, traders: Mapping[str, Any]
) -> tuple[domain.DayRequest, ...]:
    subs = await session.execute(
        select(store.subscriptions).where(
            store.subscriptions.c.market_id == day.market_id,
            store.subscriptions.c.granted_on <= day.date,
            (store.subscriptions.c.ends_on.is_(None)) | (store.subscriptions.c.ends_on > day.date),
        )
    )
    apps = await session.execute(
        select(store.applications).where(
            store.applications.c.market_day_id == day.id, store.applications.c.withdrawn_at.is_(None)
        )
    )
    absent = await session.execute(
        select(store.absences).where(
            store.absences.c.tenant == day.tenant,
            store.absences.c.starts <= day.date,
            store.absences.c.ends >= day.date,
        )
    )
    return domain.requests_for_day(
        day.date,
        {key: store.trader_of(row) for key, row in traders.items()},
        [store.subscription_of(row) for row in subs],
        [store.application_of(row, day.date) for row in apps],
        absences=[domain.AbsencePeriod(str(a.trader_id), a.starts, a.ends) for a in absent],
    )


async def _latest_final(session: AsyncSession, day_id: UUID) -> Any | None:
    return (
        await session.execute(
            select(store.allocations)
            .where(store.allocations.c.market_day_id == day_id, store.allocations.c.final.is_(True))
            .order_by(store.allocations.c.created_at.desc())
            .limit(1)
        )
    ).one_or_none()


async def _load_inputs(
    session: AsyncSession, principal: Principal, day_id: UUID, *, seed: int, final: bool, time_limit_s: float
) -> DayInputs:
    day, market = await load_day(session, principal, day_id)
    if day.status != "scheduled":
        raise Problem(409, "this market day is cancelled")
    traders = await _traders(session, market.tenant)
    source = domain.DayAllocationInput(
        plan=domain_plan(market),
        regulation=store.regulation_of(market.regulation),
        requests=await _requests(session, day, traders),
        seed=seed,
        final=final,
        time_limit_s=time_limit_s,
    )
    final_row = await _latest_final(session, day_id)
    return DayInputs(day, market, traders, source, final_row, await _application_stamp(session, day_id))


async def _application_stamp(session: AsyncSession, day_id: UUID) -> tuple[Any, ...]:
    """What the applications of a day looked like: a final run must not publish on a stale picture."""
    rows = await session.execute(
        select(store.applications.c.id, store.applications.c.withdrawn_at)
        .where(store.applications.c.market_day_id == day_id)
        .order_by(store.applications.c.id)
    )
    return tuple((row.id, row.withdrawn_at) for row in rows)


async def run_allocation(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    day_id: UUID,
    body: models.AllocationIn,
    *,
    default_time_limit_s: float,
) -> models.AllocationOut:
    """A concept run (stored, not published) or the final run (assignments kept, StallsAllocated emitted)."""
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
    time_limit_s = body.time_limit_s or default_time_limit_s
    async with uow_factory() as uow:
        inputs = await _load_inputs(
            uow.session, principal, day_id, seed=seed, final=body.final, time_limit_s=time_limit_s
        )
    if body.final and inputs.final is not None:
        raise Problem(409, "this market day has a final allocation already")
    solve = allocate_greedy if body.solver == "greedy" else allocate
    started = time.perf_counter()
    result = await asyncio.to_thread(solve, inputs.source)
    seconds = time.perf_counter() - started
    log.info(
        "allocated market day %s: seed %d, %s, optimal %s, %.2f s, final %s",
        day_id,
        seed,
        result.solver,
        result.optimal,
        seconds,
        body.final,
    )
    async with uow_factory() as uow:
        if body.final and await _latest_final(uow.session, day_id) is not None:
            raise Problem(409, "this market day has a final allocation already")
        if body.final and await _application_stamp(uow.session, day_id) != inputs.applications:
            raise Problem(409, "applications changed while the allocation ran; run it again")
        row = await _save(uow.session, principal, inputs, result, seconds, round_="first")
        if body.final:
            await _save_assignments(uow.session, inputs, row.id, result.assignments, holders=_holders(inputs))
            uow.emit(
                allocated_event(inputs, row.id, result, "first"),
                tenant=inputs.market.tenant,
                subject=str(day_id),
            )
        return allocation_out(row, inputs.traders)


def _holders(inputs: DayInputs) -> frozenset[str]:
    return frozenset(r.trader_id for r in inputs.source.requests if r.is_holder)


def result_json(
    result: domain.AllocationResult, holders: frozenset[str], plan: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "rows": {t: row_of_run(plan, s) for t, s in result.assignments.items()},
        "assignments": {t: list(s) for t, s in result.assignments.items()},
        "rejections": {t: {"code": r.code.value, "text": r.text} for t, r in result.rejections.items()},
        "explanations": dict(result.explanations),
        "order": list(result.order),
        "placed_per_group": {str(g): n for g, n in result.placed_per_group.items()},
        "stalls_given": result.stalls_given,
        "preference_score": result.preference_score,
        "holders": sorted(holders & set(result.assignments)),
    }


def result_of(row: Any) -> domain.AllocationResult:
    data = row.result
    return domain.AllocationResult(
        assignments={t: tuple(s) for t, s in data["assignments"].items()},
        rejections={
            t: domain.Rejection(domain.RejectionReason(r["code"]), r["text"])
            for t, r in data["rejections"].items()
        },
        method=domain.DailyPlaceMethod(row.method),
        seed=row.seed,
        optimal=row.optimal,
        final=row.final,
        order=tuple(data["order"]),
        placed_per_group={int(g): n for g, n in data["placed_per_group"].items()},
        stalls_given=data["stalls_given"],
        preference_score=data["preference_score"],
        explanations=data["explanations"],
        solver=row.solver,
    )


async def _save(
    session: AsyncSession,
    principal: Principal,
    inputs: DayInputs,
    result: domain.AllocationResult,
    seconds: float,
    *,
    round_: str,
) -> Any:
    allocation_id = uuid.uuid4()
    await session.execute(
        insert(store.allocations).values(
            id=allocation_id,
            tenant=inputs.market.tenant,
            market_day_id=inputs.day.id,
            round=round_,
            final=result.final,
            method=result.method.value,
            seed=result.seed,
            solver=result.solver,
            optimal=result.optimal,
            seconds=round(seconds, 3),
            result=result_json(result, _holders(inputs), inputs.market.plan),
            created_by=principal.subject,
            created_at=utc_now(),
        )
    )
    return (
        await session.execute(select(store.allocations).where(store.allocations.c.id == allocation_id))
    ).one()


async def _save_assignments(
    session: AsyncSession,
    inputs: DayInputs,
    allocation_id: UUID,
    given: Mapping[str, tuple[str, ...]],
    *,
    holders: frozenset[str],
) -> None:
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant": inputs.market.tenant,
            "market_day_id": inputs.day.id,
            "allocation_id": allocation_id,
            "trader_id": UUID(trader_id),
            "stalls": list(stalls),
            "holder": trader_id in holders,
        }
        for trader_id, stalls in given.items()
    ]
    if rows:
        await session.execute(insert(store.assignments), rows)


def row_of_run(plan: Mapping[str, Any], stalls: tuple[str, ...] | list[str]) -> str:
    index = store.stall_index(plan)
    return str(index[stalls[0]]["row"]) if stalls and stalls[0] in index else ""


def allocation_out(row: Any, traders: Mapping[str, Any]) -> models.AllocationOut:
    data = row.result
    names = {key: trader.name for key, trader in traders.items()}
    holders = set(data.get("holders", []))
    return models.AllocationOut(
        id=row.id,
        market_day_id=row.market_day_id,
        round=row.round,
        final=row.final,
        method=row.method,
        seed=row.seed,
        solver=row.solver,
        optimal=row.optimal,
        seconds=row.seconds,
        stalls_given=data["stalls_given"],
        preference_score=data["preference_score"],
        assignments=[
            models.AssignmentOut(
                trader_id=UUID(t),
                trader_name=names.get(t, ""),
                stalls=s,
                row=data.get("rows", {}).get(t, ""),
                holder=t in holders,
                explanation=data["explanations"].get(t, ""),
            )
            for t, s in data["assignments"].items()
        ],
        rejections=[
            models.RejectionOut(
                trader_id=UUID(t),
                trader_name=names.get(t, ""),
                reason_code=r["code"],
                reason_text=r["text"],
                explanation=data["explanations"].get(t, ""),
            )
            for t, r in data["rejections"].items()
        ],
        created_at=row.created_at,
    )


def _assigned(
    plan: Mapping[str, Any], trader: Any, stalls: tuple[str, ...], holder: bool, why: str
) -> contract.StallAssignment:
    index = store.stall_index(plan)
    parts = [
        contract.AssignedStall(
            number=n,
            row=index[n]["row"],
            lat=index[n]["lat"],
            lon=index[n]["lon"],
            length_cm=int(Decimal(str(index[n]["length_m"])) * 100),
            features=index[n].get("features", []),
        )
        for n in stalls
    ]
    return contract.StallAssignment(
        trader_id=trader.id,
        kbo_number=trader.kbo_number,
        trader_name=trader.name,
        stall_numbers=list(stalls),
        row=parts[0].row,
        lat=sum(p.lat for p in parts) / len(parts),
        lon=sum(p.lon for p in parts) / len(parts),
        stalls=parts,
        holder=holder,
        explanation=why[:1000],
    )


def allocated_event(
    inputs: DayInputs, allocation_id: UUID, result: domain.AllocationResult, round_: str
) -> contract.StallsAllocated:
    times = day_times(inputs.market, inputs.day.date)
    holders = _holders(inputs)
    return contract.StallsAllocated(
        allocation_id=allocation_id,
        market_day_id=inputs.day.id,
        market_id=inputs.market.id,
        market_name=inputs.market.name,
        market_date=inputs.day.date,
        place=place_of(inputs.market),
        setup_starts_at=times.setup_starts_at,
        setup_ends_at=times.setup_ends_at,
        opens_at=times.opens_at,
        closes_at=times.closes_at,
        round="release" if round_ == "release" else "first",
        method=result.method.value,
        seed=result.seed,
        solver="greedy" if result.solver == "greedy" else "cp-sat",
        optimal=result.optimal,
        assignments=[
            _assigned(inputs.market.plan, inputs.traders[t], s, t in holders, result.explanations.get(t, ""))
            for t, s in result.assignments.items()
        ],
        rejections=[
            contract.AllocationRejection(
                trader_id=UUID(t),
                reason_code=r.code.value,
                reason_text=r.text,
                explanation=result.explanations.get(t, "")[:1000],
            )
            for t, r in result.rejections.items()
        ],
        allocated_at=utc_now(),
    )


async def list_allocations(
    uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID
) -> list[models.AllocationOut]:
    async with uow_factory() as uow:
        _, market = await load_day(uow.session, principal, day_id)
        traders = await _traders(uow.session, market.tenant)
        rows = await uow.session.execute(
            select(store.allocations)
            .where(store.allocations.c.market_day_id == day_id)
            .order_by(store.allocations.c.created_at)
        )
        return [allocation_out(row, traders) for row in rows]


async def _walk_in_requests(
    session: AsyncSession, principal: Principal, inputs: DayInputs, walk_ins: list[models.WalkInIn]
) -> tuple[domain.DayRequest, ...]:
    applications = []
    chosen: dict[str, domain.Trader] = {}
    for index, walk_in in enumerate(walk_ins):
        trader = await load_trader(session, principal, walk_in.trader_id)
        application = domain.Application(
            trader_id=str(trader.id),
            market_day=inputs.day.date,
            min_stalls=walk_in.min_stalls,
            max_stalls=walk_in.max_stalls,
            preferred_stalls=tuple(walk_in.preferred_stalls),
            anywhere=walk_in.anywhere,
            needs=frozenset(domain.StallFeature(n) for n in walk_in.needs),
        )
        try:
            domain.validate_application(application, inputs.source.plan, inputs.source.regulation)
        except domain.DomainError as error:
            raise field_problem(error, "walk_ins", index) from None
        applications.append(application)
        chosen[str(trader.id)] = store.trader_of(trader)
    arrivals = {str(w.trader_id): w.arrived_at for w in walk_ins}
    # Under the arrival-order method the walk-ins' arrival times decide, with the lottery on ties.
    return tuple(
        replace(request, arrived_at=arrivals.get(request.trader_id))
        for request in domain.requests_for_day(inputs.day.date, chosen, [], applications)
    )


async def run_release_round(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    day_id: UUID,
    body: models.ReleaseIn,
    *,
    time_limit_s: float,
    enforce_release_time: bool,
) -> models.AllocationOut:
    """At the release time: free the stalls of traders not checked in, then place walk-ins on what is free."""
    async with uow_factory() as uow:
        inputs = await _load_inputs(
            uow.session, principal, day_id, seed=0, final=True, time_limit_s=time_limit_s
        )
        if inputs.final is None:
            raise Problem(409, "there is no final allocation to release stalls from")
        if enforce_release_time and utc_now() < day_times(inputs.market, inputs.day.date).release_at:
            raise Problem(409, "stalls are released only from the release time on")
        walk_ins = await _walk_in_requests(uow.session, principal, inputs, body.walk_ins)
        active = list(
            await uow.session.execute(
                select(store.assignments).where(
                    store.assignments.c.market_day_id == day_id, store.assignments.c.released_at.is_(None)
                )
            )
        )
    first = result_of(inputs.final)
    # Traders already placed earlier the same day keep their place; the last final result is the base.
    first = replace(first, assignments={str(a.trader_id): tuple(a.stalls) for a in active})
    present = {str(a.trader_id) for a in active if a.checked_in_at is not None}
    seed = body.seed if body.seed is not None else first.seed
    source = replace(inputs.source, seed=seed)
    started = time.perf_counter()
    result = await asyncio.to_thread(release_round, first, source, present, walk_ins, seed=seed)
    seconds = time.perf_counter() - started
    log.info("release round of market day %s: seed %d, %.2f s", day_id, seed, seconds)
    async with uow_factory() as uow:
        now = utc_now()
        for assignment in active:
            if str(assignment.trader_id) in present:
                continue
            reason = "absent_holder" if assignment.holder else "no_show"
            await uow.session.execute(
                update(store.assignments)
                .where(store.assignments.c.id == assignment.id)
                .values(released_at=now, release_reason=reason)
            )
            uow.emit(
                contract.StallReleased(
                    market_day_id=day_id,
                    market_id=inputs.market.id,
                    trader_id=assignment.trader_id,
                    stall_numbers=assignment.stalls,
                    reason=reason,
                    released_at=now,
                ),
                tenant=inputs.market.tenant,
                subject=str(day_id),
            )
        merged = _with_walk_ins(inputs, walk_ins)
        row = await _save(uow.session, principal, merged, result, seconds, round_="release")
        new = {t: s for t, s in result.assignments.items() if t not in present}
        await _save_assignments(uow.session, merged, row.id, new, holders=frozenset())
        uow.emit(
            allocated_event(merged, row.id, result, "release"),
            tenant=inputs.market.tenant,
            subject=str(day_id),
        )
        return allocation_out(row, merged.traders)


def _with_walk_ins(inputs: DayInputs, walk_ins: tuple[domain.DayRequest, ...]) -> DayInputs:
    known = {r.trader_id for r in inputs.source.requests}
    extra = tuple(r for r in walk_ins if r.trader_id not in known)
    return replace(inputs, source=replace(inputs.source, requests=inputs.source.requests + extra))
