"""Commands and queries on markets, their plans and their days."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import insert, select, update

from contracts import market as contract
from eventbus import UnitOfWorkFactory
from market import domain, models, store
from market.handlers.loading import (
    day_times,
    field_problem,
    load_day,
    load_market,
    place_of,
    utc_now,
)
from servicekit.auth import Principal
from servicekit.problems import Problem

MAX_DAYS_AHEAD = 400


def plan_json(plan: models.PlanIn) -> dict[str, Any]:
    return plan.model_dump(mode="json")


def check_plan(plan: models.PlanIn, place: tuple[float, float], *prefix: str) -> domain.MarketPlan:
    """The validated domain plan; a broken plan is a 422 naming the stall or row (`rows[1].stalls[2]`)."""
    flat = [(r, s) for r, row in enumerate(plan.rows) for s in range(len(row.stalls))]

    def remap(field: str) -> str:
        field = re.sub(r"^stalls\[(\d+)\]", lambda m: "rows[{}].stalls[{}]".format(*flat[int(m[1])]), field)
        return re.sub(r"\.obstacles\[(\d+)\]\.after_stall", r".obstacles_after[\1]", field)

    try:
        return domain.validate_plan(store.plan_of(plan_json(plan), place))
    except domain.DomainError as error:
        raise field_problem(error, *prefix, remap=remap) from None


def _check_market(body: models.MarketIn) -> None:
    try:
        ZoneInfo(body.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Problem(
            422, "timezone: unknown time zone", errors=[_loc("timezone", "unknown time zone")]
        ) from None
    for index, weekday in enumerate(body.weekdays):
        if not 0 <= weekday <= 6:
            raise Problem(422, "weekdays: 0 (Monday) to 6", errors=[_loc(f"weekdays.{index}", "0 to 6")])
    if body.closes <= body.opens:
        raise Problem(
            422, "closes: before opening", errors=[_loc("closes", "the market closes before it opens")]
        )
    if body.setup_ends <= body.setup_starts:
        raise Problem(
            422, "setup_ends: before start", errors=[_loc("setup_ends", "set-up ends before it starts")]
        )


def _loc(field: str, message: str) -> dict[str, Any]:
    path: list[str | int] = [int(p) if p.isdigit() else p for p in field.split(".")]
    return {"loc": ["body", *path], "msg": message, "type": "value_error"}


def market_out(row: Any, *, detail: bool = False) -> models.MarketOut:
    data: dict[str, Any] = {
        "id": row.id,
        "tenant": row.tenant,
        "name": row.name,
        "place": models.PlaceIn(name=row.place_name, address=row.address, lat=row.lat, lon=row.lon),
        "weekdays": row.weekdays,
        "opens": row.opens,
        "closes": row.closes,
        "setup_starts": row.setup_starts,
        "setup_ends": row.setup_ends,
        "timezone": row.timezone,
        "regulation": models.RegulationIn.model_validate(row.regulation),
        "stall_count": sum(len(r["stalls"]) for r in row.plan["rows"]),
    }
    if detail:
        return models.MarketDetail(**data, plan=models.PlanIn.model_validate(row.plan))
    return models.MarketOut(**data)


async def create_market(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    body: models.MarketIn,
    *,
    market_id: UUID | None = None,
) -> models.MarketOut:
    _check_market(body)
    check_plan(body.plan, (body.place.lat, body.place.lon), "plan")
    async with uow_factory() as uow:
        taken = await uow.session.execute(
            select(store.markets.c.id).where(
                store.markets.c.tenant == principal.tenant, store.markets.c.name == body.name
            )
        )
        if taken.first() is not None:
            raise Problem(409, f"a market named {body.name!r} exists already")
        new_id = market_id or uuid.uuid4()
        values: dict[str, Any] = {
            "id": new_id,
            "tenant": principal.tenant,
            "name": body.name,
            "place_name": body.place.name,
            "address": body.place.address,
            "lat": body.place.lat,
            "lon": body.place.lon,
            "timezone": body.timezone,
            "weekdays": sorted(set(body.weekdays)),
            "opens": store.hhmm(body.opens),
            "closes": store.hhmm(body.closes),
            "setup_starts": store.hhmm(body.setup_starts),
            "setup_ends": store.hhmm(body.setup_ends),
            "regulation": body.regulation.model_dump(mode="json"),
            "plan": plan_json(body.plan),
            "created_at": utc_now(),
        }
        await uow.session.execute(insert(store.markets).values(**values))
        row = await load_market(uow.session, principal, new_id)
        return market_out(row, detail=True)


async def replace_plan(
    uow_factory: UnitOfWorkFactory, principal: Principal, market_id: UUID, plan: models.PlanIn
) -> models.MarketOut:
    async with uow_factory() as uow:
        market = await load_market(uow.session, principal, market_id)
        check_plan(plan, (market.lat, market.lon))
        await uow.session.execute(
            update(store.markets).where(store.markets.c.id == market_id).values(plan=plan_json(plan))
        )
        return market_out(await load_market(uow.session, principal, market_id), detail=True)


async def list_markets(uow_factory: UnitOfWorkFactory, tenant: str | None) -> list[Any]:
    async with uow_factory() as uow:
        query = select(store.markets).order_by(store.markets.c.tenant, store.markets.c.name)
        if tenant is not None:
            query = query.where(store.markets.c.tenant == tenant)
        return list((await uow.session.execute(query)).all())


async def get_market(uow_factory: UnitOfWorkFactory, principal: Principal | None, market_id: UUID) -> Any:
    async with uow_factory() as uow:
        return await load_market(uow.session, principal, market_id)


def day_out(day: Any, market: Any) -> models.MarketDayOut:
    times = day_times(market, day.date)
    return models.MarketDayOut(
        id=day.id,
        market_id=market.id,
        market_name=market.name,
        date=day.date,
        status=day.status,
        opens_at=times.opens_at,
        closes_at=times.closes_at,
        setup_starts_at=times.setup_starts_at,
        setup_ends_at=times.setup_ends_at,
        release_at=times.release_at,
    )


async def schedule_days(
    uow_factory: UnitOfWorkFactory, principal: Principal, market_id: UUID, body: models.DaysIn
) -> list[models.MarketDayOut]:
    """Market days from the weekly schedule (closures left out); days scheduled before stay as they are."""
    if body.end < body.start or (body.end - body.start) > timedelta(days=MAX_DAYS_AHEAD):
        raise Problem(
            422, "end: within 400 days after start", errors=[_loc("end", "within 400 days after start")]
        )
    async with uow_factory() as uow:
        market = await load_market(uow.session, principal, market_id)
        schedule = domain.WeeklySchedule(
            frozenset(market.weekdays), store.parse_hhmm(market.opens), store.parse_hhmm(market.closes)
        )
        existing = {
            row.date
            for row in await uow.session.execute(
                select(store.market_days.c.date).where(store.market_days.c.market_id == market_id)
            )
        }
        created = []
        for day in domain.market_days(schedule, body.start, body.end, set(body.closures)):
            if day in existing:
                continue
            day_id = uuid.uuid4()
            await uow.session.execute(
                insert(store.market_days).values(
                    id=day_id, tenant=market.tenant, market_id=market_id, date=day, status="scheduled"
                )
            )
            uow.emit(scheduled_event(market, day_id, day), tenant=market.tenant, subject=str(day_id))
            created.append(day_id)
        rows = await uow.session.execute(
            select(store.market_days)
            .where(store.market_days.c.id.in_(created))
            .order_by(store.market_days.c.date)
        )
        return [day_out(row, market) for row in rows]


def scheduled_event(market: Any, day_id: UUID, day: Any) -> contract.MarketDayScheduled:
    times = day_times(market, day)
    return contract.MarketDayScheduled(
        market_day_id=day_id,
        market_id=market.id,
        market_name=market.name,
        market_date=day,
        place=place_of(market),
        opens_at=times.opens_at,
        closes_at=times.closes_at,
        setup_starts_at=times.setup_starts_at,
        setup_ends_at=times.setup_ends_at,
        release_at=times.release_at,
        scheduled_at=utc_now(),
    )


async def cancel_day(
    uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID, reason: str
) -> models.MarketDayOut:
    async with uow_factory() as uow:
        day, market = await load_day(uow.session, principal, day_id)
        if day.status == "cancelled":
            return day_out(day, market)
        await uow.session.execute(
            update(store.market_days)
            .where(store.market_days.c.id == day_id)
            .values(status="cancelled", cancel_reason=reason)
        )
        uow.emit(
            contract.MarketDayCancelled(
                market_day_id=day_id,
                market_id=market.id,
                market_date=day.date,
                reason=reason,
                cancelled_at=utc_now(),
            ),
            tenant=market.tenant,
            subject=str(day_id),
        )
        day, market = await load_day(uow.session, principal, day_id)
        return day_out(day, market)


async def list_days(
    uow_factory: UnitOfWorkFactory,
    principal: Principal | None,
    market_id: UUID,
    keep: Callable[[Any], bool] = lambda day: True,
) -> list[models.MarketDayOut]:
    async with uow_factory() as uow:
        market = await load_market(uow.session, principal, market_id)
        rows = await uow.session.execute(
            select(store.market_days)
            .where(store.market_days.c.market_id == market_id)
            .order_by(store.market_days.c.date)
        )
        return [day_out(row, market) for row in rows if keep(row)]


async def get_day(uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID) -> models.MarketDayOut:
    async with uow_factory() as uow:
        day, market = await load_day(uow.session, principal, day_id)
        return day_out(day, market)
