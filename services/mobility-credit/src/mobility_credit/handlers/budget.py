"""Which grant pays a trip, and the cap counters: read under row locks so caps hold under concurrency."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
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

UsageKey = tuple[str, UUID, str]  # (citizen, scheme, cap window): one cap_usage counter


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
    candidates = await open_grants(uow, [(tenant, citizen_id)], [trip.consumed_at])
    covering = covering_grants(candidates, tenant, citizen_id, trip)
    balances = await available_balances(uow, [covering])
    used = await lock_usages(uow, usage_keys(citizen_id, covering, trip))
    return pick_grant(citizen_id, covering, trip, used, balances, released)


def covering_grants(
    candidates: Mapping[tuple[str, str], list[Any]], tenant: str, citizen_id: str, trip: domain.TripRequest
) -> list[Any]:
    """The citizen's grants open on the trip's day whose scheme pays for its mode and provider."""
    day = trip.consumed_at.astimezone(LOCAL_TIME).date()
    covering = [
        c
        for c in candidates.get((tenant, citizen_id), ())
        if c.valid_from <= day <= c.expires_on
        and parse_scheme(c.scheme_id, c.definition).covers(trip.mode, trip.provider_id)
    ]
    if not covering:
        raise domain.NotEligible(f"no budget of this citizen pays for {trip.mode.value} with this provider")
    return covering


def _windows(scheme: domain.Scheme, trip: domain.TripRequest) -> tuple[str, ...]:
    return tuple(domain.cap_key(cap, trip.consumed_at) for cap in domain.applicable_caps(scheme, trip.mode))


def usage_keys(citizen_id: str, covering: Iterable[Any], trip: domain.TripRequest) -> list[UsageKey]:
    """The cap counters a trip may use: those of every covering grant's scheme."""
    return [
        (citizen_id, c.scheme_id, window)
        for c in covering
        for window in _windows(parse_scheme(c.scheme_id, c.definition), trip)
    ]


def pick_grant(
    citizen_id: str,
    covering: list[Any],
    trip: domain.TripRequest,
    used: Mapping[UsageKey, int],
    balances: Mapping[UUID, int],
    released: int = 0,
) -> Choice:
    """The first covering grant whose balance pays the trip's city share after the caps (`used`, locked)."""
    short = 0
    for candidate in covering:
        scheme = parse_scheme(candidate.scheme_id, candidate.definition)
        caps = domain.applicable_caps(scheme, trip.mode)
        windows = _windows(scheme, trip)
        room = {
            cap: cap.amount_cents - used[(citizen_id, candidate.scheme_id, key)] + released
            for cap, key in zip(caps, windows, strict=True)
        }
        split = domain.split_fare(scheme, trip, room)
        # With a single candidate the ledger's own check (never below zero) decides, saving a round trip.
        available = balances.get(accounts.grant_account(candidate.id), split.city_cents)
        if split.city_cents <= available:
            return Choice(candidate.id, candidate.scheme_id, scheme, split, windows)
        short = max(short, split.city_cents - available)
    raise domain.InsufficientBudget(f"the citizen's budget is {short} cents short for this trip")


async def available_balances(uow: UnitOfWork, coverings: Iterable[list[Any]]) -> dict[UUID, int]:
    """Available balances of the grants of trips that have a choice (with one grant, the ledger decides)."""
    ids = [accounts.grant_account(g.id) for covering in coverings if len(covering) > 1 for g in covering]
    if not ids:
        return {}
    session = await ledger_session(uow)
    found = await session.lookup_accounts(ids)
    return {account.id: account.balance.available for account in found}


def _open_grants_query() -> sa.Select[Any]:
    g, s = store.grants, store.schemes
    return (
        sa.select(
            g.c.id, g.c.tenant, g.c.citizen_id, g.c.valid_from, g.c.expires_on, g.c.scheme_id, s.c.definition
        )
        .join(s, s.c.id == g.c.scheme_id)
        .where(
            sa.tuple_(g.c.tenant, g.c.citizen_id).in_(sa.bindparam("citizens", expanding=True)),
            g.c.valid_from <= sa.bindparam("last_day"),
            g.c.expires_on >= sa.bindparam("first_day"),
            g.c.expired_cents.is_(None),
        )
        .order_by(g.c.expires_on, g.c.id)
    )


# Built once: on the payment path, building a statement and its cache key costs more than running it.
_OPEN_GRANTS = _open_grants_query()


async def open_grants(
    uow: UnitOfWork, citizens: Collection[tuple[str, str]], moments: Iterable[datetime]
) -> dict[tuple[str, str], list[Any]]:
    """Unexpired grants valid on some day of `moments`, per (tenant, citizen) pair, each in expiry order."""
    days = [moment.astimezone(LOCAL_TIME).date() for moment in moments]
    params = {"citizens": sorted(set(citizens)), "first_day": min(days), "last_day": max(days)}
    connection = await uow.session.connection()
    grants: dict[tuple[str, str], list[Any]] = {}
    for row in await connection.execute(_OPEN_GRANTS, params):
        grants.setdefault((row.tenant, row.citizen_id), []).append(row)
    return grants


async def lock_usage(
    uow: UnitOfWork, citizen_id: str, scheme_id: UUID, windows: Iterable[str]
) -> dict[str, int]:
    """Used city share per cap window, with the counters locked until the transaction ends."""
    used = await lock_usages(uow, [(citizen_id, scheme_id, window) for window in windows])
    return {window: cents for (_, _, window), cents in used.items()}


async def lock_usages(uow: UnitOfWork, keys: Iterable[UsageKey]) -> dict[UsageKey, int]:
    """Used city share per (citizen, scheme, window), locked in one sorted order so that no two deadlock."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    u = store.usage
    connection = await uow.session.connection()
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    await uow.session.execute(
        dialect_insert(u)
        .values([{"citizen_id": c, "scheme_id": s, "window": w, "used_cents": 0} for c, s, w in wanted])
        .on_conflict_do_nothing()
    )
    rows = await uow.session.execute(
        sa.select(u.c.citizen_id, u.c.scheme_id, u.c.window, u.c.used_cents)
        .where(sa.tuple_(u.c.citizen_id, u.c.scheme_id, u.c.window).in_(wanted))
        .order_by(u.c.citizen_id, u.c.scheme_id, u.c.window)
        .with_for_update()
    )
    return {(row.citizen_id, row.scheme_id, row.window): row.used_cents for row in rows}


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
