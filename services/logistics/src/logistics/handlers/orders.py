"""Orders: placed by shippers or operators, cancelled, and sent to a trader's stall once it is allocated."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import logistics, market
from contracts.envelope import Envelope
from eventbus import UnitOfWork, UnitOfWorkFactory
from logistics import domain, records, store
from logistics.handlers.errors import Conflict, NotFound, field_errors
from logistics.routing import haversine_m
from logistics.schemas import OrderIn, OrderOut
from logistics.settings import Settings
from servicekit.auth import Principal

FINAL = ("delivered", "failed", "cancelled")


def is_staff(principal: Principal) -> bool:
    return principal.has_role("operator", "city_admin")


async def place_order(
    uow_factory: UnitOfWorkFactory, settings: Settings, principal: Principal, body: OrderIn
) -> OrderOut:
    """Place an order; with a reference, placing it again (a retry after a lost answer) is the same order."""
    shipper = body.shipper_id if body.shipper_id and is_staff(principal) else principal.subject
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    for attempt in range(2):
        try:
            async with uow_factory() as uow:
                earlier = await _placed_before(uow, principal.tenant, shipper, body.reference)
                if earlier is not None:
                    if earlier["request_digest"] != digest:
                        raise Conflict(
                            f"reference {body.reference!r} already names another order of this shipper"
                        )
                    return records.order_out(earlier)
                row = await add_order(uow, settings, principal.tenant, shipper, body, digest)
            return records.order_out(row)
        except IntegrityError:
            if attempt:  # a concurrent retry placed it first; the second look finds it
                raise
    raise AssertionError("unreachable")


async def _placed_before(uow: UnitOfWork, tenant: str, shipper: str, reference: str) -> dict[str, Any] | None:
    if not reference:
        return None
    table = store.orders
    query = select(table).where(
        table.c.tenant == tenant, table.c.shipper_id == shipper, table.c.reference == reference
    )
    found = (await uow.session.execute(query)).mappings().first()
    return dict(found) if found is not None else None


async def add_order(
    uow: UnitOfWork, settings: Settings, tenant: str, shipper: str, body: OrderIn, digest: str | None = None
) -> dict[str, Any]:
    """Insert a checked order and emit OrderPlaced, inside the caller's unit of work."""
    with field_errors():
        _check_order(body)
    windows = [w.model_dump(mode="json") for w in body.windows]
    hubs = await _hubs(uow.session, tenant)
    with field_errors():
        _check_places(body, hubs, settings)
    recipient, lat, lon, windows, status = await _recipient(uow.session, tenant, body, windows)
    now = datetime.now(UTC)
    row = {
        "id": uuid4(),
        "tenant": tenant,
        "reference": body.reference,
        "shipper_id": shipper,
        "recipient": recipient.model_dump(mode="json"),
        "lat": lat,
        "lon": lon,
        "delivery_date": body.delivery_date,
        "wave": body.wave,
        "windows": windows,
        "weight_kg": body.weight_kg,
        "volume_m3": body.volume_m3,
        "service_s": body.service_s,
        "priority": body.priority,
        "cold_chain": body.cold_chain,
        "pickup": _pickup(body),
        "status": status,
        "status_reason": "" if status == "open" else "the trader's stall is not allocated yet",
        "created_at": now,
        "updated_at": now,
        "request_digest": digest,
    }
    await uow.session.execute(insert(store.orders).values(**row))
    uow.emit(_placed(row, recipient), tenant=tenant, subject=str(row["id"]))
    return row


def _check_order(body: OrderIn) -> None:
    windows = tuple(domain.TimeWindow(w.start, w.end) for w in body.windows)
    domain.check_windows(windows, "windows")
    if not windows and body.recipient.kind == "shop":
        raise domain.InvalidTimeWindow("windows", "an order to a shop needs at least one delivery window")
    if body.recipient.kind == "shop" and body.recipient.location is None:
        raise domain.InvalidLocation("recipient.location", "a shop needs its location")
    if body.recipient.kind == "market_stall" and body.recipient.trader_id is None:
        raise domain.InvalidField("recipient.trader_id", "a market stall delivery names the trader")
    if (body.hub_id is None) == (body.supplier is None):
        raise domain.InvalidField("hub_id", "give either a hub to pick up at or a supplier")
    if body.supplier is not None:
        supplier_windows = tuple(domain.TimeWindow(w.start, w.end) for w in body.supplier.windows)
        domain.check_windows(supplier_windows, "supplier.windows")


def _check_places(body: OrderIn, hubs: dict[UUID, Any], settings: Settings) -> None:
    if body.hub_id is not None and body.hub_id not in hubs:
        raise domain.UnknownReference("hub_id", f"no hub {body.hub_id}")
    points = [("recipient.location", body.recipient.location)]
    if body.supplier is not None:
        points.append(("supplier.location", body.supplier.location))
    for field, point in points:
        if point is None:
            continue
        place = domain.GeoPoint(point.lat, point.lon)
        reach = settings.service_radius_km * 1000
        if not any(haversine_m(place, domain.GeoPoint(h["lat"], h["lon"])) <= reach for h in hubs.values()):
            raise domain.OutsideServiceArea(field, "outside every reachable area (too far from every hub)")


async def _hubs(session: AsyncSession, tenant: str) -> dict[UUID, Any]:
    rows = (await session.execute(select(store.hubs).where(store.hubs.c.tenant == tenant))).mappings()
    return {row["id"]: row for row in rows}


async def _recipient(
    session: AsyncSession, tenant: str, body: OrderIn, windows: list[dict[str, Any]]
) -> tuple[logistics.Recipient, float | None, float | None, list[dict[str, Any]], str]:
    given = body.recipient
    values = given.model_dump(exclude={"location"})
    if given.kind == "shop":
        assert given.location is not None
        recipient = logistics.Recipient(**values, lat=given.location.lat, lon=given.location.lon)
        return recipient, given.location.lat, given.location.lon, windows, "open"
    table = store.stall_positions
    stall = (
        (
            await session.execute(
                select(table).where(
                    table.c.tenant == tenant,
                    table.c.trader_id == given.trader_id,
                    table.c.market_date == body.delivery_date,
                )
            )
        )
        .mappings()
        .first()
    )
    if stall is None:
        return logistics.Recipient(**values), None, None, windows, "awaiting_stall"
    recipient = _at_stall(logistics.Recipient(**values), stall)
    return recipient, stall["lat"], stall["lon"], _setup_window(stall), "open"


def _at_stall(recipient: logistics.Recipient, stall: Any) -> logistics.Recipient:
    return recipient.model_copy(
        update={
            "market_day_id": stall["market_day_id"],
            "stall_numbers": list(stall["stall_numbers"]),
            "lat": stall["lat"],
            "lon": stall["lon"],
            "address": recipient.address or stall["market_name"],
        }
    )


def _setup_window(stall: Any) -> list[dict[str, Any]]:
    return [{"start": stall["setup_starts_at"].isoformat(), "end": stall["setup_ends_at"].isoformat()}]


def _pickup(body: OrderIn) -> dict[str, Any]:
    if body.hub_id is not None:
        return {"hub_id": str(body.hub_id)}
    assert body.supplier is not None
    return {
        "name": body.supplier.name,
        "lat": body.supplier.location.lat,
        "lon": body.supplier.location.lon,
        "windows": [w.model_dump(mode="json") for w in body.supplier.windows],
        "service_s": body.supplier.service_s,
    }


def _placed(row: dict[str, Any], recipient: logistics.Recipient) -> logistics.OrderPlaced:
    hub_id = row["pickup"].get("hub_id")
    return logistics.OrderPlaced(
        order_id=row["id"],
        reference=row["reference"],
        shipper_id=row["shipper_id"],
        recipient=recipient,
        delivery_date=row["delivery_date"],
        windows=[logistics.Window.model_validate(w) for w in row["windows"]],
        weight_kg=row["weight_kg"],
        volume_m3=row["volume_m3"],
        pickup="hub" if hub_id else "supplier",
        hub_id=UUID(hub_id) if hub_id else None,
        priority=row["priority"],
        placed_at=row["created_at"],
    )


async def load_order(session: AsyncSession, principal: Principal, order_id: UUID) -> Any:
    """The order if the caller may see it: staff of its municipality, or its own shipper."""
    row = (
        (await session.execute(select(store.orders).where(store.orders.c.id == order_id))).mappings().first()
    )
    if row is None or row["tenant"] != principal.tenant:
        raise NotFound(f"no order {order_id}")
    if not is_staff(principal) and row["shipper_id"] != principal.subject:
        raise NotFound(f"no order {order_id}")
    return row


async def get_order(uow_factory: UnitOfWorkFactory, principal: Principal, order_id: UUID) -> OrderOut:
    async with uow_factory() as uow:
        return records.order_out(await load_order(uow.session, principal, order_id))


async def list_orders(
    uow_factory: UnitOfWorkFactory, principal: Principal, day: Any = None, status: str | None = None
) -> list[OrderOut]:
    table = store.orders
    query = select(table).where(table.c.tenant == principal.tenant).order_by(table.c.created_at)
    if not is_staff(principal):
        query = query.where(table.c.shipper_id == principal.subject)
    if day is not None:
        query = query.where(table.c.delivery_date == day)
    if status is not None:
        query = query.where(table.c.status == status)
    async with uow_factory() as uow:
        return [records.order_out(row) for row in (await uow.session.execute(query)).mappings()]


async def cancel_order(
    uow_factory: UnitOfWorkFactory, principal: Principal, order_id: UUID, reason: str
) -> OrderOut:
    async with uow_factory() as uow:
        row = await load_order(uow.session, principal, order_id)
        if row["status"] in FINAL:
            raise Conflict(f"the order is already {row['status']}")
        now = datetime.now(UTC)
        changes = {"status": "cancelled", "status_reason": reason, "updated_at": now}
        await uow.session.execute(update(store.orders).where(store.orders.c.id == order_id).values(**changes))
        event = logistics.OrderCancelled(
            order_id=order_id, shipper_id=row["shipper_id"], reason=reason, cancelled_at=now
        )
        uow.emit(event, tenant=principal.tenant, subject=str(order_id))
        return records.order_out({**row, **changes})


async def on_stalls_allocated(uow: UnitOfWork, event: market.StallsAllocated, envelope: Envelope) -> None:
    """Remember where each trader stands; orders to their stall get its position and the set-up window."""
    table = store.stall_positions
    for assignment in event.assignments:
        # A release round lists only its own traders: replace theirs, keep the first round's others.
        await uow.session.execute(
            delete(table).where(
                table.c.market_day_id == event.market_day_id, table.c.trader_id == assignment.trader_id
            )
        )
        stall = {
            "market_day_id": event.market_day_id,
            "trader_id": assignment.trader_id,
            "tenant": envelope.tenant,
            "market_date": event.market_date,
            "market_name": f"{event.market_name}, {event.place.address}",
            "stall_numbers": assignment.stall_numbers,
            "lat": assignment.lat,
            "lon": assignment.lon,
            "setup_starts_at": event.setup_starts_at,
            "setup_ends_at": event.setup_ends_at,
            "allocation_id": event.allocation_id,
        }
        await uow.session.execute(insert(table).values(**stall))
        await _place_at_stall(uow.session, stall)


async def _place_at_stall(session: AsyncSession, stall: dict[str, Any]) -> None:
    table = store.orders
    rows = (
        await session.execute(
            select(table).where(
                table.c.tenant == stall["tenant"],
                table.c.delivery_date == stall["market_date"],
                table.c.status.not_in(FINAL),
            )
        )
    ).mappings()
    for row in rows:
        recipient = logistics.Recipient.model_validate(row["recipient"])
        if recipient.kind != "market_stall" or recipient.trader_id != stall["trader_id"]:
            continue
        status = "open" if row["status"] == "awaiting_stall" else row["status"]
        await session.execute(
            update(table)
            .where(table.c.id == row["id"])
            .values(
                recipient=_at_stall(recipient, stall).model_dump(mode="json"),
                lat=stall["lat"],
                lon=stall["lon"],
                windows=_setup_window(stall),
                status=status,
                status_reason="",
                updated_at=datetime.now(UTC),
            )
        )
