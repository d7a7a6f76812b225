"""Read views: a trader's own outcomes per market day, and the public day view searchable by product."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eventbus import UnitOfWorkFactory
from market import models, store
from market.handlers.loading import day_times, load_day, own_trader


async def _final_allocations(session: AsyncSession, tenant: str) -> list[Any]:
    """The final allocations of the tenant, newest last, so a later round overrides an earlier one."""
    rows = await session.execute(
        select(store.allocations)
        .where(store.allocations.c.tenant == tenant, store.allocations.c.final.is_(True))
        .order_by(store.allocations.c.created_at)
    )
    return list(rows)


async def own_days(uow_factory: UnitOfWorkFactory, principal: Any) -> list[models.MyDayOut]:
    """Every day with a final allocation that placed or rejected the calling trader, with the reason."""
    async with uow_factory() as uow:
        trader = await own_trader(uow.session, principal)
        key = str(trader.id)
        outcome: dict[UUID, Any] = {}
        for allocation in await _final_allocations(uow.session, trader.tenant):
            data = allocation.result
            if key in data["assignments"] or key in data["rejections"]:
                outcome[allocation.market_day_id] = allocation
        mine = {
            row.market_day_id: row
            for row in await uow.session.execute(
                select(store.assignments).where(store.assignments.c.trader_id == trader.id)
            )
        }
        days = []
        for day_id, allocation in outcome.items():
            day, market = await load_day(uow.session, principal, day_id)
            days.append(_my_day(key, allocation, mine.get(day_id), day, market))
    return sorted(days, key=lambda d: (d.market_date, d.market_name))


def _my_day(key: str, allocation: Any, assignment: Any | None, day: Any, market: Any) -> models.MyDayOut:
    data = allocation.result
    times = day_times(market, day.date)
    common: dict[str, Any] = {
        "market_day_id": day.id,
        "market_id": market.id,
        "market_name": market.name,
        "market_date": day.date,
        "explanation": data["explanations"].get(key, ""),
        "setup_starts_at": times.setup_starts_at,
        "setup_ends_at": times.setup_ends_at,
    }
    if assignment is not None:
        return models.MyDayOut(
            **common,
            status="released" if assignment.released_at is not None else "assigned",
            assignment_id=assignment.id,
            stalls=assignment.stalls,
            row=store.stall_index(market.plan).get(assignment.stalls[0], {}).get("row"),
            checked_in_at=assignment.checked_in_at,
        )
    rejection = data["rejections"].get(key, {})
    return models.MyDayOut(
        **common, status="rejected", reason_code=rejection.get("code"), reason_text=rejection.get("text")
    )


def _matches(query: str, trader: Any) -> bool:
    words = [*trader.products, trader.name, trader.specialisation or ""]
    return any(query in word.lower() for word in words)


async def public_day(
    uow_factory: UnitOfWorkFactory, day_id: UUID, product: str | None
) -> models.PublicDayOut:
    """Stall → trader → products for the day's allocation; `product` keeps traders selling such a thing."""
    query = (product or "").strip().lower()
    async with uow_factory() as uow:
        day, market = await load_day(uow.session, None, day_id)
        rows = await uow.session.execute(
            select(store.assignments.c.stalls, store.traders)
            .join(store.traders, store.traders.c.id == store.assignments.c.trader_id)
            .where(store.assignments.c.market_day_id == day_id, store.assignments.c.released_at.is_(None))
        )
        index = store.stall_index(market.plan)
        stalls = [
            models.PublicStall(
                number=number,
                row=index[number]["row"],
                lat=index[number]["lat"],
                lon=index[number]["lon"],
                trader_name=row.name,
                products=row.products,
                specialisation=row.specialisation,
            )
            for row in rows
            if not query or _matches(query, row)
            for number in row.stalls
            if number in index
        ]
    times = day_times(market, day.date)
    return models.PublicDayOut(
        market_day_id=day.id,
        market_name=market.name,
        market_date=day.date,
        place=models.PlaceIn(name=market.place_name, address=market.address, lat=market.lat, lon=market.lon),
        opens_at=times.opens_at,
        closes_at=times.closes_at,
        allocated=await _has_final(uow_factory, day_id),
        stalls=sorted(stalls, key=lambda s: (s.row, _natural(s.number))),
    )


async def _has_final(uow_factory: UnitOfWorkFactory, day_id: UUID) -> bool:
    async with uow_factory() as uow:
        found = await uow.session.execute(
            select(store.allocations.c.id).where(
                store.allocations.c.market_day_id == day_id, store.allocations.c.final.is_(True)
            )
        )
        return found.first() is not None


def _natural(number: str) -> tuple[str, int]:
    digits = "".join(ch for ch in number if ch.isdigit())
    return number.rstrip("0123456789"), int(digits) if digits else 0
