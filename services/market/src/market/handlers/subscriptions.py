"""Subscription places: grants, transfers (valid KBO, same specialisation, a year apart), ends, candidates."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, update

from contracts import market as contract
from eventbus import UnitOfWorkFactory
from market import domain, models, store
from market.handlers.loading import domain_plan, field_problem, load_market, load_trader, utc_now
from servicekit.auth import Principal
from servicekit.problems import Problem


def subscription_out(row: Any) -> models.SubscriptionOut:
    return models.SubscriptionOut(
        id=row.id,
        market_id=row.market_id,
        trader_id=row.trader_id,
        stalls=row.stalls,
        specialisation=row.specialisation,
        granted_on=row.granted_on,
        transferred_on=row.transferred_on,
        ends_on=row.ends_on,
    )


async def _held_stalls(session: Any, market_id: UUID, on: date) -> set[str]:
    rows = await session.execute(
        select(store.subscriptions.c.stalls).where(
            store.subscriptions.c.market_id == market_id,
            (store.subscriptions.c.ends_on.is_(None)) | (store.subscriptions.c.ends_on > on),
        )
    )
    return {number for (stalls,) in rows for number in stalls}


async def grant_subscription(
    uow_factory: UnitOfWorkFactory, principal: Principal, market_id: UUID, body: models.SubscriptionIn
) -> models.SubscriptionOut:
    async with uow_factory() as uow:
        market = await load_market(uow.session, principal, market_id)
        trader = await load_trader(uow.session, principal, body.trader_id)
        plan = domain_plan(market)
        held = await _held_stalls(uow.session, market_id, body.granted_on)
        for index, number in enumerate(body.stalls):
            try:
                plan.stall(number)
            except domain.UnknownStall as error:
                raise field_problem(domain.UnknownStall(f"stalls[{index}]", error.message)) from None
            if number in held:
                raise Problem(409, f"stall {number} is held by another subscription")
        sub_id = uuid.uuid4()
        await uow.session.execute(
            insert(store.subscriptions).values(
                id=sub_id,
                tenant=market.tenant,
                market_id=market_id,
                trader_id=trader.id,
                stalls=body.stalls,
                specialisation=trader.specialisation,
                granted_on=body.granted_on,
            )
        )
        uow.emit(
            contract.SubscriptionGranted(
                subscription_id=sub_id,
                market_id=market_id,
                trader_id=trader.id,
                stall_numbers=body.stalls,
                specialisation=trader.specialisation,
                granted_on=body.granted_on,
                granted_at=utc_now(),
            ),
            tenant=market.tenant,
            subject=str(sub_id),
        )
        return subscription_out(await _subscription(uow.session, principal, sub_id))


async def _subscription(session: Any, principal: Principal, sub_id: UUID) -> Any:
    row = (
        await session.execute(select(store.subscriptions).where(store.subscriptions.c.id == sub_id))
    ).one_or_none()
    if row is None or row.tenant != principal.tenant:
        raise Problem(404, "no such subscription")
    return row


async def transfer_subscription(
    uow_factory: UnitOfWorkFactory, principal: Principal, sub_id: UUID, body: models.TransferIn
) -> models.SubscriptionOut:
    async with uow_factory() as uow:
        row = await _subscription(uow.session, principal, sub_id)
        to = await load_trader(uow.session, principal, body.to_trader_id)
        try:
            moved = domain.transfer_subscription(store.subscription_of(row), store.trader_of(to), body.on)
        except domain.DomainError as error:
            raise field_problem(error) from None
        await uow.session.execute(
            update(store.subscriptions)
            .where(store.subscriptions.c.id == sub_id)
            .values(trader_id=to.id, transferred_on=moved.transferred_on)
        )
        uow.emit(
            contract.SubscriptionTransferred(
                subscription_id=sub_id,
                market_id=row.market_id,
                from_trader_id=row.trader_id,
                to_trader_id=to.id,
                to_kbo_number=to.kbo_number,
                transferred_on=body.on,
                locked_until=domain.add_months(body.on, domain.TRANSFER_LOCK_MONTHS),
                transferred_at=utc_now(),
            ),
            tenant=row.tenant,
            subject=str(sub_id),
        )
        return subscription_out(await _subscription(uow.session, principal, sub_id))


async def end_subscription(
    uow_factory: UnitOfWorkFactory, principal: Principal, sub_id: UUID, body: models.EndSubscriptionIn
) -> models.SubscriptionOut:
    async with uow_factory() as uow:
        row = await _subscription(uow.session, principal, sub_id)
        if body.reason == "place_abolished":
            try:
                domain.check_notice(
                    domain.PlaceChange.ABOLISH, body.announced_on or date.today(), body.ends_on
                )
            except domain.DomainError as error:
                raise field_problem(error) from None
        await uow.session.execute(
            update(store.subscriptions)
            .where(store.subscriptions.c.id == sub_id)
            .values(ends_on=body.ends_on, end_reason=body.reason)
        )
        uow.emit(
            contract.SubscriptionEnded(
                subscription_id=sub_id,
                market_id=row.market_id,
                trader_id=row.trader_id,
                ends_on=body.ends_on,
                reason=body.reason,
                ended_at=utc_now(),
            ),
            tenant=row.tenant,
            subject=str(sub_id),
        )
        return subscription_out(await _subscription(uow.session, principal, sub_id))


async def list_subscriptions(
    uow_factory: UnitOfWorkFactory, principal: Principal, market_id: UUID
) -> list[models.SubscriptionOut]:
    async with uow_factory() as uow:
        await load_market(uow.session, principal, market_id)
        rows = await uow.session.execute(
            select(store.subscriptions).where(store.subscriptions.c.market_id == market_id)
        )
        return [subscription_out(row) for row in rows]


async def register_candidate(
    uow_factory: UnitOfWorkFactory, principal: Principal, market_id: UUID, body: models.CandidateIn
) -> list[models.CandidateOut]:
    """Put a trader on the candidate register for subscription places; answers that category's register."""
    async with uow_factory() as uow:
        market = await load_market(uow.session, principal, market_id)
        trader = await load_trader(uow.session, principal, body.trader_id)
        taken = await uow.session.execute(
            select(store.candidates.c.id).where(
                store.candidates.c.market_id == market_id, store.candidates.c.trader_id == trader.id
            )
        )
        if taken.first() is not None:
            raise Problem(409, "this trader is on the register already")
        await uow.session.execute(
            insert(store.candidates).values(
                id=uuid.uuid4(),
                tenant=market.tenant,
                market_id=market_id,
                trader_id=trader.id,
                specialisation=trader.specialisation,
                priority_group=body.priority_group,
                registered_on=body.registered_on,
            )
        )
    return await candidate_register(uow_factory, principal, market_id, trader.specialisation)


async def candidate_register(
    uow_factory: UnitOfWorkFactory, principal: Principal, market_id: UUID, specialisation: str | None
) -> list[models.CandidateOut]:
    """The register of one specialisation in the order vacancies are offered: group, then date."""
    async with uow_factory() as uow:
        await load_market(uow.session, principal, market_id)
        rows = await uow.session.execute(
            select(store.candidates, store.traders.c.name)
            .join(store.traders, store.traders.c.id == store.candidates.c.trader_id)
            .where(store.candidates.c.market_id == market_id)
        )
        by_trader = {str(row.trader_id): row for row in rows}
    queue = domain.candidate_queue(
        (
            domain.CandidateEntry(
                key, row.specialisation, domain.CandidateGroup(row.priority_group), row.registered_on
            )
            for key, row in by_trader.items()
        ),
        specialisation,
    )
    return [
        models.CandidateOut(
            position=position,
            trader_id=by_trader[entry.trader_id].trader_id,
            trader_name=by_trader[entry.trader_id].name,
            specialisation=entry.specialisation,
            priority_group=int(entry.group),
            registered_on=entry.registered_on,
        )
        for position, entry in enumerate(queue, start=1)
    ]
