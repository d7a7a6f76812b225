"""Which grant pays a trip, and the cap counters: read under row locks so caps hold under concurrency."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from eventbus import UnitOfWork
from mobility_credit import accounts, domain, store
from mobility_credit.domain import LOCAL_TIME
from mobility_credit.handlers.catalogue import parse_scheme
from mobility_credit.transaction import ledger_session


@dataclass(frozen=True)
class Choice:
    """The grant that pays a trip, the split of its fare, and the cap windows its city share uses."""

    grant_id: UUID
    scheme_id: UUID
    scheme: domain.Scheme
    split: domain.Split
    windows: tuple[str, ...]


def trip_request(
    provider: Any, mode: domain.Mode, place: Any, consumed_at: datetime, fare: int
) -> domain.TripRequest:
    if mode.value not in provider.modes:
        raise domain.NotEligible(f"this provider does not offer {mode.value}")
    return domain.TripRequest(str(provider.id), mode, fare, consumed_at, place.name, place.lat, place.lon)


async def choose_grant(
    uow: UnitOfWork, tenant: str, citizen_id: str, trip: domain.TripRequest, released: int = 0
) -> Choice:
    """The citizen's grant that expires first among those that pay for this trip and still cover its share.

    `released` is city share the caller gives back to the caps first (a hold being captured counts itself).
    """
    candidates = await _open_grants(uow, tenant, citizen_id, trip.consumed_at)
    covering = [
        c for c in candidates if parse_scheme(c.scheme_id, c.definition).covers(trip.mode, trip.provider_id)
    ]
    if not covering:
        raise domain.NotEligible(f"no budget of this citizen pays for {trip.mode.value} with this provider")
    balances = await _available(uow, covering)
    short = 0
    for candidate in covering:
        scheme = parse_scheme(candidate.scheme_id, candidate.definition)
        windows = tuple(
            domain.cap_key(cap, trip.consumed_at) for cap in domain.applicable_caps(scheme, trip.mode)
        )
        used = await lock_usage(uow, citizen_id, candidate.scheme_id, windows)
        room = {
            cap: cap.amount_cents - used[key] + released
            for cap, key in zip(domain.applicable_caps(scheme, trip.mode), windows, strict=True)
        }
        split = domain.split_fare(scheme, trip, room)
        # With a single candidate the ledger's own check (never below zero) decides, saving a round trip.
        available = balances.get(accounts.grant_account(candidate.id), 0) if balances else split.city_cents
        if split.city_cents <= available:
            return Choice(candidate.id, candidate.scheme_id, scheme, split, windows)
        short = max(short, split.city_cents - available)
    raise domain.InsufficientBudget(f"the citizen's budget is {short} cents short for this trip")


async def _available(uow: UnitOfWork, grants: list[Any]) -> dict[UUID, int]:
    if len(grants) < 2:
        return {}
    session = await ledger_session(uow)
    found = await session.lookup_accounts([accounts.grant_account(g.id) for g in grants])
    return {account.id: account.balance.available for account in found}


def _open_grants_query() -> sa.Select[Any]:
    g, s = store.grants, store.schemes
    return (
        sa.select(g.c.id, g.c.scheme_id, s.c.definition)
        .join(s, s.c.id == g.c.scheme_id)
        .where(
            g.c.tenant == sa.bindparam("tenant"),
            g.c.citizen_id == sa.bindparam("citizen_id"),
            g.c.valid_from <= sa.bindparam("day"),
            g.c.expires_on >= sa.bindparam("day"),
            g.c.expired_cents.is_(None),
        )
        .order_by(g.c.expires_on, g.c.id)
    )


# Built once: on the payment path, building a statement and its cache key costs more than running it.
_OPEN_GRANTS = _open_grants_query()


async def _open_grants(uow: UnitOfWork, tenant: str, citizen_id: str, at: datetime) -> list[Any]:
    day = at.astimezone(LOCAL_TIME).date()
    params = {"tenant": tenant, "citizen_id": citizen_id, "day": day}
    return list((await uow.session.execute(_OPEN_GRANTS, params)).all())


async def lock_usage(
    uow: UnitOfWork, citizen_id: str, scheme_id: UUID, windows: Iterable[str]
) -> dict[str, int]:
    """Used city share per cap window, with the counters locked until the transaction ends."""
    keys = sorted(set(windows))
    if not keys:
        return {}
    u = store.usage
    connection = await uow.session.connection()
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    await uow.session.execute(
        dialect_insert(u)
        .values(
            [{"citizen_id": citizen_id, "scheme_id": scheme_id, "window": k, "used_cents": 0} for k in keys]
        )
        .on_conflict_do_nothing()
    )
    rows = await uow.session.execute(
        sa.select(u.c.window, u.c.used_cents)
        .where(u.c.citizen_id == citizen_id, u.c.scheme_id == scheme_id, u.c.window.in_(keys))
        .order_by(u.c.window)
        .with_for_update()
    )
    return {row.window: row.used_cents for row in rows}


async def add_usage(
    uow: UnitOfWork, citizen_id: str, scheme_id: UUID, windows: Iterable[str], cents: int
) -> None:
    keys = sorted(set(windows))
    if not keys or cents == 0:
        return
    u = store.usage
    await uow.session.execute(
        sa.update(u)
        .where(u.c.citizen_id == citizen_id, u.c.scheme_id == scheme_id, u.c.window.in_(keys))
        .values(used_cents=u.c.used_cents + cents)
    )
