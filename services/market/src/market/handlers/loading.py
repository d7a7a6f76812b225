"""Loading rows with tenant and ownership checks, local market times, and domain errors as 422 problems."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import market as contract
from market import domain, store
from servicekit.auth import Principal, ensure_tenant
from servicekit.problems import Problem

MASTER_ROLES = frozenset({"market_master", "city_admin"})


def utc_now() -> datetime:
    return datetime.now(UTC)


def field_problem(error: domain.DomainError, *prefix: str | int, remap: Any = None) -> Problem:
    """A 422 problem whose `errors[0].loc` points at the offending input, like request validation does."""
    field = remap(error.field) if remap else error.field
    loc: list[str | int] = ["body", *prefix]
    for name, index in re.findall(r"([A-Za-z_]+)(?:\[(\d+)\])?", field):
        loc.append(name)
        if index:
            loc.append(int(index))
    return Problem(
        422,
        f"{'.'.join(str(p) for p in loc[1:])}: {error.message}",
        title="Invalid request",
        type=f"urn:cityblocks:problem:{error.code.replace('_', '-')}",
        errors=[{"loc": loc, "msg": error.message, "type": error.code}],
    )


async def load_market(session: AsyncSession, principal: Principal | None, market_id: UUID) -> Any:
    row = (await session.execute(select(store.markets).where(store.markets.c.id == market_id))).one_or_none()
    if row is None:
        raise Problem(404, "no such market")
    if principal is not None:
        ensure_tenant(principal, row.tenant)
    return row


async def load_day(session: AsyncSession, principal: Principal | None, day_id: UUID) -> tuple[Any, Any]:
    """The market day and its market; another tenant's day answers 404."""
    day = (
        await session.execute(select(store.market_days).where(store.market_days.c.id == day_id))
    ).one_or_none()
    if day is None:
        raise Problem(404, "no such market day")
    if principal is not None:
        ensure_tenant(principal, day.tenant)
    return day, await load_market(session, principal, day.market_id)


async def own_trader(session: AsyncSession, principal: Principal) -> Any:
    """The trader record of the calling trader (linked by the identity provider's subject)."""
    subject = principal.claim("trader_id") or principal.subject
    row = (
        await session.execute(
            select(store.traders).where(
                store.traders.c.tenant == principal.tenant, store.traders.c.user_subject == subject
            )
        )
    ).one_or_none()
    if row is None:
        raise Problem(404, "no trader profile yet: register first (PUT /v1/me)")
    return row


async def load_trader(session: AsyncSession, principal: Principal, trader_id: UUID) -> Any:
    row = (await session.execute(select(store.traders).where(store.traders.c.id == trader_id))).one_or_none()
    if row is None:
        raise Problem(404, "no such trader")
    ensure_tenant(principal, row.tenant)
    return row


def is_master(principal: Principal) -> bool:
    return principal.has_role(*MASTER_ROLES)


@dataclass(frozen=True)
class DayTimes:
    opens_at: datetime
    closes_at: datetime
    setup_starts_at: datetime
    setup_ends_at: datetime
    release_at: datetime


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def day_times(market: Any, day: date) -> DayTimes:
    """The market's local clock times on `day` as aware UTC datetimes."""
    zone = ZoneInfo(market.timezone)
    regulation = store.regulation_of(market.regulation)
    return DayTimes(
        opens_at=_at(day, store.parse_hhmm(market.opens), zone),
        closes_at=_at(day, store.parse_hhmm(market.closes), zone),
        setup_starts_at=_at(day, store.parse_hhmm(market.setup_starts), zone),
        setup_ends_at=_at(day, store.parse_hhmm(market.setup_ends), zone),
        release_at=_at(day, regulation.release_time, zone),
    )


def place_of(market: Any) -> contract.MarketPlace:
    return contract.MarketPlace(
        name=market.place_name, address=market.address, lat=market.lat, lon=market.lon
    )


def domain_plan(market: Any) -> domain.MarketPlan:
    return store.plan_of(market.plan, (market.lat, market.lon))
