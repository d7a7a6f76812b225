"""Projections of other services' events into publishable shapes, and the tenant's public event stream."""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts import incentives, logistics, market, mobility_credit, registry
from contracts.base import Event
from contracts.envelope import Envelope
from eventbus import UnitOfWork
from opendata import domain, store
from servicekit.service import EventHandler

_keys: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


async def ensure_pseudonym_key(session: AsyncSession, configured: str = "") -> bytes:
    """The database's pseudonym key: the configured one, else the stored one, else a new random one."""
    row = (
        await session.execute(select(store.pseudonym_key.c.key).where(store.pseudonym_key.c.id == 1))
    ).first()
    if configured and (row is None or row.key != configured):
        if row is None:
            await session.execute(insert(store.pseudonym_key).values(id=1, key=configured))
        else:
            await session.execute(
                update(store.pseudonym_key).where(store.pseudonym_key.c.id == 1).values(key=configured)
            )
        return configured.encode()
    if row is not None:
        return str(row.key).encode()
    key = secrets.token_hex(32)
    await session.execute(insert(store.pseudonym_key).values(id=1, key=key))
    return key.encode()


async def _pseudonym(session: AsyncSession, identifier: str) -> str:
    engine: AsyncEngine | Any = session.bind
    key = _keys.get(engine.sync_engine) if engine is not None else None
    if key is None:
        key = await ensure_pseudonym_key(session)
        if engine is not None:
            _keys[engine.sync_engine] = key
    return domain.pseudonym(key, identifier)


def forget_cached_keys() -> None:
    _keys.clear()


async def _districts(session: AsyncSession, tenant: str) -> list[domain.District]:
    table = store.districts
    rows = await session.execute(
        select(table.c.name, table.c.geometry).where(table.c.tenant == tenant).order_by(table.c.position)
    )
    return [domain.District(name, geometry) for name, geometry in rows]


async def _upsert(
    session: AsyncSession, table: Any, key: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    where = [table.c[name] == value for name, value in key.items()]
    found = (await session.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
    if found:
        await session.execute(update(table).where(*where).values(**values))
    else:
        await session.execute(insert(table).values(**key, **values))


# --- market -------------------------------------------------------------------------------------------------


async def on_trader(
    uow: UnitOfWork, event: market.TraderRegistered | market.TraderProfileUpdated, envelope: Envelope
) -> None:
    values = {
        "tenant": envelope.tenant,
        "name": event.name,
        "products": event.products,
        "specialisation": event.specialisation,
        "open_data": event.open_data,
    }
    await _upsert(uow.session, store.traders, {"id": event.trader_id}, values)


async def _market_day(
    session: AsyncSession, tenant: str, event: market.MarketDayScheduled | market.StallsAllocated
) -> None:
    values = {
        "tenant": tenant,
        "market_id": event.market_id,
        "market_name": event.market_name,
        "market_date": event.market_date,
        "place": event.place.model_dump(mode="json"),
        "opens_at": event.opens_at,
        "closes_at": event.closes_at,
    }
    await _upsert(session, store.market_days, {"id": event.market_day_id}, values)


async def on_market_day_scheduled(
    uow: UnitOfWork, event: market.MarketDayScheduled, envelope: Envelope
) -> None:
    await _market_day(uow.session, envelope.tenant, event)


async def on_market_day_cancelled(
    uow: UnitOfWork, event: market.MarketDayCancelled, envelope: Envelope
) -> None:
    table = store.market_days
    await uow.session.execute(update(table).where(table.c.id == event.market_day_id).values(cancelled=True))
    await uow.session.execute(delete(store.stalls).where(store.stalls.c.market_day_id == event.market_day_id))


async def on_stalls_allocated(uow: UnitOfWork, event: market.StallsAllocated, envelope: Envelope) -> None:
    """A first round replaces the day's stalls; a release round adds the walk-ins' stalls."""
    await _market_day(uow.session, envelope.tenant, event)
    table = store.stalls
    if event.round == "first":
        await uow.session.execute(delete(table).where(table.c.market_day_id == event.market_day_id))
    rows = [
        {
            "market_day_id": event.market_day_id,
            "number": stall.number,
            "tenant": envelope.tenant,
            "row": stall.row,
            "lat": stall.lat,
            "lon": stall.lon,
            "length_cm": stall.length_cm,
            "features": [str(feature) for feature in stall.features],
            "trader_id": assignment.trader_id,
        }
        for assignment in event.assignments
        for stall in assignment.stalls
    ]
    if rows:
        numbers = [row["number"] for row in rows]
        await uow.session.execute(
            delete(table).where(table.c.market_day_id == event.market_day_id, table.c.number.in_(numbers))
        )
        await uow.session.execute(insert(table), rows)


async def on_stall_released(uow: UnitOfWork, event: market.StallReleased, envelope: Envelope) -> None:
    table = store.stalls
    await uow.session.execute(
        delete(table).where(
            table.c.market_day_id == event.market_day_id,
            table.c.number.in_(event.stall_numbers),
            table.c.trader_id == event.trader_id,
        )
    )


# --- logistics ----------------------------------------------------------------------------------------------


async def on_stop_completed(uow: UnitOfWork, event: logistics.StopCompleted, envelope: Envelope) -> None:
    if event.stop_kind != "delivery":
        return
    values = {
        "tenant": envelope.tenant,
        "day": domain.local_day(event.completed_at),
        "route_id": event.route_id,
        "vehicle_kind": str(event.vehicle_kind),
        "route_distance_m": event.distance_m,
        "zones": list(event.zones),
    }
    await _upsert(uow.session, store.deliveries, {"order_id": event.order_id}, values)


# --- mobility credit ----------------------------------------------------------------------------------------


async def on_trip_paid(uow: UnitOfWork, event: mobility_credit.TripPaid, envelope: Envelope) -> None:
    districts = await _districts(uow.session, envelope.tenant)
    values = {
        "tenant": envelope.tenant,
        "month": domain.local_month(event.consumed_at),
        "mode": str(event.mode),
        "district": domain.district_of(districts, event.place.lat, event.place.lon),
        "person": await _pseudonym(uow.session, event.citizen_id),
        "city_share_cents": event.city_share_cents,
    }
    await _upsert(uow.session, store.trips, {"trip_id": event.trip_id}, values)


async def on_trip_refunded(uow: UnitOfWork, event: mobility_credit.TripRefunded, envelope: Envelope) -> None:
    table = store.trips
    await uow.session.execute(
        update(table)
        .where(table.c.trip_id == event.trip_id)
        .values(refunded_cents=table.c.refunded_cents + event.amount_cents)
    )


# --- incentives ---------------------------------------------------------------------------------------------


async def on_campaign_launched(
    uow: UnitOfWork, event: incentives.CampaignLaunched, envelope: Envelope
) -> None:
    values = {
        "tenant": envelope.tenant,
        "name": event.name,
        "sponsor": event.sponsor,
        "coin_code": event.coin_code,
        "budget_coins": event.budget_coins,
        "valid_from": event.valid_from,
        "valid_until": event.valid_until,
    }
    await _upsert(uow.session, store.campaigns, {"id": event.campaign_id}, values)


async def on_campaign_ended(uow: UnitOfWork, event: incentives.CampaignEnded, envelope: Envelope) -> None:
    table = store.campaigns
    await uow.session.execute(update(table).where(table.c.id == event.campaign_id).values(ended=True))


async def _movement(session: AsyncSession, key: Any, values: dict[str, Any]) -> None:
    await _upsert(session, store.coin_movements, {"id": key}, values)


async def on_coins_issued(uow: UnitOfWork, event: incentives.CoinsIssued, envelope: Envelope) -> None:
    person = None
    if event.beneficiary_kind == "citizen":
        person = await _pseudonym(uow.session, event.beneficiary_id)
    values = {
        "tenant": envelope.tenant,
        "kind": "issued",
        "campaign_id": event.campaign_id,
        "coin_code": event.coin_code,
        "month": domain.local_month(event.issued_at),
        "person": person,
        "amount": event.amount,
    }
    await _movement(uow.session, event.issuance_id, values)


async def on_coins_spent(
    uow: UnitOfWork, event: incentives.CoinsRedeemed | incentives.CoinsExpired, envelope: Envelope
) -> None:
    """Coins leaving a wallet: redeemed at a merchant or expired (counted per coin, not per campaign)."""
    if isinstance(event, incentives.CoinsRedeemed):
        key, kind, at = event.redemption_id, "redeemed", event.redeemed_at
    else:
        key, kind, at = event.expiry_id, "expired", event.expired_at
    values = {
        "tenant": envelope.tenant,
        "kind": kind,
        "campaign_id": None,
        "coin_code": event.coin_code,
        "month": domain.local_month(at),
        "person": await _pseudonym(uow.session, f"wallet:{event.wallet_id}"),
        "amount": event.amount,
    }
    await _movement(uow.session, key, values)


# --- the public event stream --------------------------------------------------------------------------------


async def record_public(uow: UnitOfWork, event: Event, envelope: Envelope) -> None:
    """Append a public event to its tenant's stream once (a redelivered event keeps its first position)."""
    table = store.stream_members
    seen = await uow.session.execute(select(table.c.position).where(table.c.event_id == envelope.id))
    if seen.first() is not None:
        return
    last = await uow.session.execute(
        select(func.max(table.c.position)).where(table.c.tenant == envelope.tenant)
    )
    top = last.scalar_one()
    await uow.session.execute(
        insert(table).values(
            tenant=envelope.tenant,
            position=0 if top is None else top + 1,
            event_id=envelope.id,
            event_type=envelope.type,
            service=event.event_service,
            subject=event.partition_key(),
            time=envelope.time,
            data=envelope.data,
        )
    )


SPECIFIC: dict[type[Event], EventHandler] = {
    market.TraderRegistered: on_trader,
    market.TraderProfileUpdated: on_trader,
    market.MarketDayScheduled: on_market_day_scheduled,
    market.MarketDayCancelled: on_market_day_cancelled,
    market.StallsAllocated: on_stalls_allocated,
    market.StallReleased: on_stall_released,
    logistics.StopCompleted: on_stop_completed,
    mobility_credit.TripPaid: on_trip_paid,
    mobility_credit.TripRefunded: on_trip_refunded,
    incentives.CampaignLaunched: on_campaign_launched,
    incentives.CampaignEnded: on_campaign_ended,
    incentives.CoinsIssued: on_coins_issued,
    incentives.CoinsRedeemed: on_coins_spent,
    incentives.CoinsExpired: on_coins_spent,
}


def _streamed(handler: EventHandler | None) -> EventHandler:
    async def handle(uow: UnitOfWork, event: Any, envelope: Envelope) -> None:
        if handler is not None:
            await handler(uow, event, envelope)
        await record_public(uow, event, envelope)

    return handle


def subscriptions() -> dict[type[Event], EventHandler]:
    """The projections above; every public event of the catalogue also goes to its tenant's stream."""
    table = dict(SPECIFIC)
    for cls in registry.catalogue().values():
        if cls.public:
            table[cls] = _streamed(table.get(cls))
    return table


SUBSCRIPTIONS = subscriptions()
