"""Provider commands: pay a trip, place / capture / void a hold, refund; each once per Idempotency-Key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from contracts import mobility_credit as events
from eventbus import UnitOfWork, UnitOfWorkFactory
from ledger import Transfer, TransferFlags
from mobility_credit import accounts, domain, store
from mobility_credit.handlers.budget import Choice, add_usage, choose_grant, lock_usage, trip_request
from mobility_credit.handlers.catalogue import load_provider, parse_scheme
from mobility_credit.models import CaptureIn, HoldIn, HoldOut, PlaceOut, RefundIn, RefundOut, TripIn, TripOut
from mobility_credit.transaction import aware, idempotent, now, transfer
from servicekit.auth import Principal

Answer = tuple[int, dict[str, Any]]
DEFAULT_HOLD_S = 2 * 3600
INSERT_TRIP = sa.insert(store.trips)


def scope_of(principal: Principal, provider_id: UUID) -> str:
    return f"{principal.tenant}/{provider_id}"


async def pay_trip(
    uow_factory: UnitOfWorkFactory, principal: Principal, provider_id: UUID, body: TripIn, key: str
) -> Answer:
    async def work(uow: UnitOfWork) -> Answer:
        provider = await load_provider(uow, principal, provider_id)
        trip = trip_request(provider, body.mode, body.place, body.consumed_at, body.total_cents)
        choice = await choose_grant(uow, principal.tenant, body.citizen_id, trip)
        trip_id = accounts.derived_id("trip", provider_id, key)
        payable = accounts.provider_payable(provider_id, provider.shards).pick(trip_id)
        await add_usage(uow, body.citizen_id, choice.scheme_id, choice.windows, choice.split.city_cents)
        paid = paid_trip(principal.tenant, provider, trip_id, body.citizen_id, trip, choice, payable)
        out = await record_trip(uow, paid)
        # The ledger locks the budget and the provider's payable shard: last, so they are held briefly.
        if choice.split.city_cents > 0:
            await transfer(uow, [trip_transfer(trip_id, choice, payable)])
        return 201, out.model_dump(mode="json")

    return await idempotent(
        uow_factory,
        scope=scope_of(principal, provider_id),
        key=key,
        operation="pay",
        body=body.model_dump(mode="json"),
        work=work,
    )


def trip_transfer(trip_id: UUID, choice: Choice, payable: UUID) -> Transfer:
    """The city share of a trip, from the chosen grant to the provider's payable shard."""
    return Transfer(
        trip_id,
        accounts.grant_account(choice.grant_id),
        payable,
        choice.split.city_cents,
        accounts.EUR,
        accounts.TransferCode.TRIP,
    )


@dataclass(frozen=True)
class PaidTrip:
    """What paying a trip writes: the trips row, the TripPaid event and the answer."""

    row: dict[str, Any]
    event: events.TripPaid
    out: TripOut


def paid_trip(
    tenant: str,
    provider: Any,
    trip_id: UUID,
    citizen_id: str,
    trip: domain.TripRequest,
    choice: Choice,
    payable: UUID,
    hold_id: UUID | None = None,
) -> PaidTrip:
    paid_at = now()
    split = choice.split
    row = dict(
        id=trip_id,
        tenant=tenant,
        provider_id=provider.id,
        citizen_id=citizen_id,
        scheme_id=choice.scheme_id,
        grant_id=choice.grant_id,
        mode=trip.mode.value,
        place_name=trip.place_name,
        lat=trip.lat,
        lon=trip.lon,
        consumed_at=trip.consumed_at,
        total_cents=split.total_cents,
        city_share_cents=split.city_cents,
        advantage=split.advantage,
        hold_id=hold_id,
        payable_account_id=payable,
        paid_at=paid_at,
    )
    event = events.TripPaid(
        trip_id=trip_id,
        citizen_id=citizen_id,
        provider_id=provider.id,
        provider_name=provider.name,
        scheme_id=choice.scheme_id,
        mode=trip.mode.value,
        place=events.Place(name=trip.place_name, lat=trip.lat, lon=trip.lon),
        consumed_at=trip.consumed_at,
        total_cents=split.total_cents,
        city_share_cents=split.city_cents,
        citizen_share_cents=split.citizen_cents,
        hold_id=hold_id,
        paid_at=paid_at,
    )
    out = TripOut(
        id=trip_id,
        provider_id=provider.id,
        citizen_id=citizen_id,
        scheme_id=choice.scheme_id,
        mode=trip.mode,
        place=PlaceOut(name=trip.place_name, lat=trip.lat, lon=trip.lon),
        consumed_at=trip.consumed_at,
        total_cents=split.total_cents,
        city_share_cents=split.city_cents,
        citizen_share_cents=split.citizen_cents,
        refunded_cents=0,
        advantage=split.advantage,
        hold_id=hold_id,
        paid_at=paid_at,
    )
    return PaidTrip(row, event, out)


async def record_trip(uow: UnitOfWork, paid: PaidTrip) -> TripOut:
    await uow.session.execute(INSERT_TRIP, paid.row)
    uow.emit(paid.event, tenant=paid.row["tenant"], subject=str(paid.row["id"]))
    return paid.out


def trip_out(row: Any) -> TripOut:
    return TripOut(
        id=row.id,
        provider_id=row.provider_id,
        citizen_id=row.citizen_id,
        scheme_id=row.scheme_id,
        mode=domain.Mode(row.mode),
        place=PlaceOut(name=row.place_name, lat=row.lat, lon=row.lon),
        consumed_at=row.consumed_at,
        total_cents=row.total_cents,
        city_share_cents=row.city_share_cents,
        citizen_share_cents=row.total_cents - row.city_share_cents,
        refunded_cents=row.refunded_cents,
        advantage=row.advantage,
        hold_id=row.hold_id,
        paid_at=row.paid_at,
    )


async def place_hold(
    uow_factory: UnitOfWorkFactory, principal: Principal, provider_id: UUID, body: HoldIn, key: str
) -> Answer:
    async def work(uow: UnitOfWork) -> Answer:
        provider = await load_provider(uow, principal, provider_id)
        trip = trip_request(provider, body.mode, body.place, body.consumed_at, body.estimated_total_cents)
        choice = await choose_grant(uow, principal.tenant, body.citizen_id, trip)
        if choice.split.city_cents <= 0:
            raise domain.NotEligible("the citizen's budget pays nothing for this trip now (a cap is reached)")
        hold_id = accounts.derived_id("hold", provider_id, key)
        payable = accounts.provider_payable(provider_id, provider.shards).pick(hold_id)
        timeout = body.expires_in_s or DEFAULT_HOLD_S
        money = Transfer(
            hold_id,
            accounts.grant_account(choice.grant_id),
            payable,
            choice.split.city_cents,
            accounts.EUR,
            accounts.TransferCode.HOLD,
            flags=TransferFlags.PENDING,
            timeout=timeout,
        )
        [result] = await transfer(uow, [money])
        assert result.transfer is not None
        expires_at = result.transfer.expires_at or now() + timedelta(seconds=timeout)
        await add_usage(uow, body.citizen_id, choice.scheme_id, choice.windows, choice.split.city_cents)
        row = {
            "id": hold_id,
            "tenant": principal.tenant,
            "provider_id": provider_id,
            "citizen_id": body.citizen_id,
            "scheme_id": choice.scheme_id,
            "grant_id": choice.grant_id,
            "mode": body.mode.value,
            "place_name": trip.place_name,
            "lat": trip.lat,
            "lon": trip.lon,
            "consumed_at": trip.consumed_at,
            "estimated_total_cents": body.estimated_total_cents,
            "amount_cents": choice.split.city_cents,
            "payable_account_id": payable,
            "usage_keys": list(choice.windows),
            "status": "open",
            "expires_at": expires_at,
            "created_at": now(),
        }
        await uow.session.execute(sa.insert(store.holds).values(**row))
        uow.emit(
            events.HoldPlaced(
                hold_id=hold_id,
                citizen_id=body.citizen_id,
                provider_id=provider_id,
                scheme_id=choice.scheme_id,
                mode=body.mode.value,
                place=events.Place(name=trip.place_name, lat=trip.lat, lon=trip.lon),
                consumed_at=trip.consumed_at,
                amount_cents=choice.split.city_cents,
                expires_at=expires_at,
            ),
            tenant=principal.tenant,
            subject=str(hold_id),
        )
        return 201, hold_out(row).model_dump(mode="json")

    return await idempotent(
        uow_factory,
        scope=scope_of(principal, provider_id),
        key=key,
        operation="hold",
        body=body.model_dump(mode="json"),
        work=work,
    )


def hold_out(row: Any) -> HoldOut:
    data = dict(row) if isinstance(row, dict) else dict(row._mapping)
    data["expires_at"] = aware(data["expires_at"])
    return HoldOut.model_validate({name: data.get(name) for name in HoldOut.model_fields})


async def _open_hold(
    uow: UnitOfWork, principal: Principal, provider_id: UUID, hold_id: UUID
) -> tuple[Any, Any]:
    provider = await load_provider(uow, principal, provider_id)
    h = store.holds
    hold = (
        await uow.session.execute(sa.select(h).where(h.c.id == hold_id, h.c.provider_id == provider_id))
    ).first()
    if hold is None:
        raise domain.NotFound("no such hold")
    if hold.status == "expired" or (hold.status == "open" and aware(hold.expires_at) <= now()):
        raise domain.HoldExpired("the hold has expired; it can no longer be captured")
    if hold.status != "open":
        raise domain.HoldNotOpen(f"the hold is already {hold.status}")
    return provider, hold


async def capture_hold(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    provider_id: UUID,
    hold_id: UUID,
    body: CaptureIn,
    key: str,
) -> Answer:
    async def work(uow: UnitOfWork) -> Answer:
        provider, hold = await _open_hold(uow, principal, provider_id, hold_id)
        if body.total_cents > hold.estimated_total_cents:
            raise domain.CaptureExceedsHold(
                f"the fare {body.total_cents} exceeds the {hold.estimated_total_cents} cents authorised"
            )
        place = PlaceOut(name=hold.place_name, lat=hold.lat, lon=hold.lon)
        trip = trip_request(
            provider, domain.Mode(hold.mode), place, aware(hold.consumed_at), body.total_cents
        )
        choice = await _capture_choice(uow, hold, trip)
        trip_id = accounts.derived_id("trip", provider_id, key)
        city = choice.split.city_cents
        resolution = Transfer.post(trip_id, hold_id, city) if city > 0 else Transfer.void(trip_id, hold_id)
        await transfer(uow, [resolution])
        await add_usage(uow, hold.citizen_id, hold.scheme_id, hold.usage_keys, city - hold.amount_cents)
        await _resolve(uow, hold_id, "captured", trip_id)
        paid = paid_trip(
            principal.tenant,
            provider,
            trip_id,
            hold.citizen_id,
            trip,
            choice,
            hold.payable_account_id,
            hold_id,
        )
        out = await record_trip(uow, paid)
        uow.emit(
            events.HoldCaptured(
                hold_id=hold_id,
                trip_id=trip_id,
                citizen_id=hold.citizen_id,
                provider_id=provider_id,
                captured_cents=city,
                released_cents=hold.amount_cents - city,
                captured_at=out.paid_at,
            ),
            tenant=principal.tenant,
            subject=str(hold_id),
        )
        return 200, out.model_dump(mode="json")

    return await idempotent(
        uow_factory,
        scope=scope_of(principal, provider_id),
        key=key,
        operation=f"capture/{hold_id}",
        body=body.model_dump(mode="json"),
        work=work,
    )


async def _capture_choice(uow: UnitOfWork, hold: Any, trip: domain.TripRequest) -> Choice:
    """The real fare's split under the hold's scheme; the hold's own reservation counts as cap room."""
    scheme = parse_scheme_of(await _scheme_definition(uow, hold.scheme_id), hold.scheme_id)
    used = await lock_usage(uow, hold.citizen_id, hold.scheme_id, hold.usage_keys)
    caps = domain.applicable_caps(scheme, trip.mode)
    room = {
        cap: cap.amount_cents - used.get(domain.cap_key(cap, trip.consumed_at), 0) + hold.amount_cents
        for cap in caps
    }
    split = domain.split_fare(scheme, trip, room)
    capped = domain.Split(split.total_cents, min(split.city_cents, hold.amount_cents), split.advantage)
    return Choice(hold.grant_id, hold.scheme_id, scheme, capped, tuple(hold.usage_keys))


async def _scheme_definition(uow: UnitOfWork, scheme_id: UUID) -> dict[str, Any]:
    s = store.schemes
    definition: dict[str, Any] = (
        await uow.session.execute(sa.select(s.c.definition).where(s.c.id == scheme_id))
    ).scalar_one()
    return definition


def parse_scheme_of(definition: dict[str, Any], scheme_id: UUID) -> domain.Scheme:
    return parse_scheme(scheme_id, definition)


async def _resolve(uow: UnitOfWork, hold_id: UUID, status: str, trip_id: UUID | None = None) -> None:
    h = store.holds
    await uow.session.execute(
        sa.update(h).where(h.c.id == hold_id).values(status=status, trip_id=trip_id, resolved_at=now())
    )


async def void_hold(
    uow_factory: UnitOfWorkFactory, principal: Principal, provider_id: UUID, hold_id: UUID, key: str
) -> Answer:
    async def work(uow: UnitOfWork) -> Answer:
        _, hold = await _open_hold(uow, principal, provider_id, hold_id)
        await lock_usage(uow, hold.citizen_id, hold.scheme_id, hold.usage_keys)
        await transfer(uow, [Transfer.void(accounts.derived_id("void", hold_id), hold_id)])
        await add_usage(uow, hold.citizen_id, hold.scheme_id, hold.usage_keys, -hold.amount_cents)
        await _resolve(uow, hold_id, "voided")
        uow.emit(
            events.HoldVoided(
                hold_id=hold_id,
                citizen_id=hold.citizen_id,
                provider_id=provider_id,
                released_cents=hold.amount_cents,
                voided_at=now(),
            ),
            tenant=principal.tenant,
            subject=str(hold_id),
        )
        row = dict(hold._mapping) | {"status": "voided"}
        return 200, hold_out(row).model_dump(mode="json")

    return await idempotent(
        uow_factory,
        scope=scope_of(principal, provider_id),
        key=key,
        operation=f"void/{hold_id}",
        body={},
        work=work,
    )


async def refund_trip(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    provider_id: UUID,
    trip_id: UUID,
    body: RefundIn,
    key: str,
) -> Answer:
    async def work(uow: UnitOfWork) -> Answer:
        await load_provider(uow, principal, provider_id)
        t = store.trips
        trip = (
            await uow.session.execute(
                sa.select(t).where(t.c.id == trip_id, t.c.provider_id == provider_id).with_for_update()
            )
        ).first()
        if trip is None:
            raise domain.NotFound("no such trip")
        amount = domain.refund_amount(trip.city_share_cents, trip.refunded_cents, body.amount_cents)
        refund_id = accounts.derived_id("refund", provider_id, key)
        scheme = parse_scheme_of(await _scheme_definition(uow, trip.scheme_id), trip.scheme_id)
        mode = domain.Mode(trip.mode)
        windows = [
            domain.cap_key(cap, aware(trip.consumed_at)) for cap in domain.applicable_caps(scheme, mode)
        ]
        await lock_usage(uow, trip.citizen_id, trip.scheme_id, windows)
        money = Transfer(
            refund_id,
            trip.payable_account_id,
            accounts.grant_account(trip.grant_id),
            amount,
            accounts.EUR,
            accounts.TransferCode.REFUND,
            metadata={"trip": str(trip_id)},
        )
        await transfer(uow, [money])
        await add_usage(uow, trip.citizen_id, trip.scheme_id, windows, -amount)
        await uow.session.execute(
            sa.update(t).where(t.c.id == trip_id).values(refunded_cents=t.c.refunded_cents + amount)
        )
        at = now()
        await uow.session.execute(
            sa.insert(store.refunds).values(
                id=refund_id,
                tenant=principal.tenant,
                trip_id=trip_id,
                provider_id=provider_id,
                citizen_id=trip.citizen_id,
                mode=trip.mode,
                amount_cents=amount,
                payable_account_id=trip.payable_account_id,
                created_at=at,
            )
        )
        uow.emit(
            events.TripRefunded(
                refund_id=refund_id,
                trip_id=trip_id,
                citizen_id=trip.citizen_id,
                provider_id=provider_id,
                amount_cents=amount,
                refunded_at=at,
            ),
            tenant=principal.tenant,
            subject=str(trip_id),
        )
        return 201, RefundOut(id=refund_id, trip_id=trip_id, amount_cents=amount, created_at=at).model_dump(
            mode="json"
        )

    return await idempotent(
        uow_factory,
        scope=scope_of(principal, provider_id),
        key=key,
        operation=f"refund/{trip_id}",
        body=body.model_dump(mode="json"),
        work=work,
    )
