"""Commands on traders: registration and profile, absences, applications for a market day."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, update

from contracts import market as contract
from eventbus import UnitOfWork, UnitOfWorkFactory
from market import domain, models, store
from market.handlers.loading import (
    domain_plan,
    field_problem,
    load_day,
    load_trader,
    own_trader,
    utc_now,
)
from servicekit.auth import Principal
from servicekit.problems import Problem


def trader_out(row: Any) -> models.TraderOut:
    return models.TraderOut(
        id=row.id,
        kbo_number=domain.format_kbo(row.kbo_number),
        name=row.name,
        products=row.products,
        specialisation=row.specialisation,
        insurance_valid_until=row.insurance_valid_until,
        food_registration=row.food_registration,
        staff=row.staff,
        open_data=row.open_data,
        registered_at=row.registered_at,
    )


def _kbo(value: str) -> str:
    try:
        return domain.normalise_kbo(value)
    except domain.InvalidKbo as error:
        raise field_problem(error) from None


async def register_trader(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    body: models.TraderIn,
    *,
    user_subject: str | None = None,
    trader_id: UUID | None = None,
) -> models.TraderOut:
    """Register an enterprise on the tenant's markets; with `user_subject`, the profile of that login."""
    kbo = _kbo(body.kbo_number)
    async with uow_factory() as uow:
        taken = await uow.session.execute(
            select(store.traders.c.id).where(
                store.traders.c.tenant == principal.tenant, store.traders.c.kbo_number == kbo
            )
        )
        if taken.first() is not None:
            raise Problem(409, "an enterprise with this KBO number is registered already")
        now = utc_now()
        new_id = trader_id or uuid.uuid4()
        await uow.session.execute(
            insert(store.traders).values(
                id=new_id,
                tenant=principal.tenant,
                user_subject=user_subject,
                kbo_number=kbo,
                registered_at=now,
                **body.model_dump(exclude={"kbo_number"}),
            )
        )
        uow.emit(
            contract.TraderRegistered(
                trader_id=new_id,
                kbo_number=kbo,
                name=body.name,
                products=body.products,
                specialisation=body.specialisation,
                registered_at=now,
                open_data=body.open_data,
            ),
            tenant=principal.tenant,
            subject=str(new_id),
        )
        return trader_out(await load_trader(uow.session, principal, new_id))


async def update_own_profile(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: models.TraderIn
) -> models.TraderOut:
    """A trader's own profile: created at the first call, updated after (the KBO number stays)."""
    subject = principal.claim("trader_id") or principal.subject
    async with uow_factory() as uow:
        try:
            row = await own_trader(uow.session, principal)
        except Problem:
            row = None
        if row is not None:
            if _kbo(body.kbo_number) != row.kbo_number:
                raise Problem(409, "the KBO number of a registered trader does not change; register anew")
            await uow.session.execute(
                update(store.traders)
                .where(store.traders.c.id == row.id)
                .values(**body.model_dump(exclude={"kbo_number"}))
            )
            uow.emit(
                contract.TraderProfileUpdated(
                    trader_id=row.id,
                    name=body.name,
                    products=body.products,
                    specialisation=body.specialisation,
                    open_data=body.open_data,
                    updated_at=utc_now(),
                ),
                tenant=principal.tenant,
                subject=str(row.id),
            )
            return trader_out(await load_trader(uow.session, principal, row.id))
    return await register_trader(uow_factory, principal, body, user_subject=subject)


async def get_own_profile(uow_factory: UnitOfWorkFactory, principal: Principal) -> models.TraderOut:
    async with uow_factory() as uow:
        return trader_out(await own_trader(uow.session, principal))


async def list_traders(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[models.TraderOut]:
    async with uow_factory() as uow:
        rows = await uow.session.execute(
            select(store.traders)
            .where(store.traders.c.tenant == principal.tenant)
            .order_by(store.traders.c.name)
        )
        return [trader_out(row) for row in rows]


async def add_absence(
    uow_factory: UnitOfWorkFactory, principal: Principal, trader_id: UUID | None, body: models.AbsenceIn
) -> None:
    """An absence period of a holder (the trader's own, or one the market master records)."""
    if body.ends < body.starts:
        raise Problem(422, "ends: before starts", errors=[{"loc": ["body", "ends"], "msg": "before starts"}])
    async with uow_factory() as uow:
        if trader_id is None:
            trader = await own_trader(uow.session, principal)
        else:
            trader = await load_trader(uow.session, principal, trader_id)
        await uow.session.execute(
            insert(store.absences).values(
                id=uuid.uuid4(), tenant=trader.tenant, trader_id=trader.id, starts=body.starts, ends=body.ends
            )
        )


def application_out(row: Any, day: Any) -> models.ApplicationOut:
    return models.ApplicationOut(
        id=row.id,
        market_day_id=row.market_day_id,
        market_date=day.date,
        trader_id=row.trader_id,
        min_stalls=row.min_stalls,
        max_stalls=row.max_stalls,
        preferred_stalls=row.preferred_stalls,
        anywhere=row.anywhere,
        needs=row.needs,
        wants_move=row.wants_move,
        submitted_at=row.submitted_at,
        withdrawn_at=row.withdrawn_at,
    )


async def _final_exists(session: Any, day_id: UUID) -> bool:
    found = await session.execute(
        select(store.allocations.c.id).where(
            store.allocations.c.market_day_id == day_id, store.allocations.c.final.is_(True)
        )
    )
    return found.first() is not None


async def submit_application(
    uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID, body: models.ApplicationIn
) -> models.ApplicationOut:
    async with uow_factory() as uow:
        trader = await own_trader(uow.session, principal)
        day, market = await load_day(uow.session, principal, day_id)
        if day.status != "scheduled":
            raise Problem(409, "this market day is cancelled")
        if await _final_exists(uow.session, day_id):
            raise Problem(409, "the stalls of this day are allocated already")
        application = domain.Application(
            trader_id=str(trader.id),
            market_day=day.date,
            min_stalls=body.min_stalls,
            max_stalls=body.max_stalls,
            preferred_stalls=tuple(body.preferred_stalls),
            anywhere=body.anywhere,
            needs=frozenset(domain.StallFeature(n) for n in body.needs),
            wants_move=body.wants_move,
        )
        try:
            domain.validate_application(
                application, domain_plan(market), store.regulation_of(market.regulation)
            )
        except domain.DomainError as error:
            raise field_problem(error) from None
        now = utc_now()
        await _replace_earlier(uow, day, trader.id, now)
        app_id = uuid.uuid4()
        await uow.session.execute(
            insert(store.applications).values(
                id=app_id,
                tenant=market.tenant,
                market_day_id=day_id,
                trader_id=trader.id,
                submitted_at=now,
                **body.model_dump(),
            )
        )
        uow.emit(
            contract.ApplicationSubmitted(
                application_id=app_id,
                market_day_id=day_id,
                market_id=market.id,
                trader_id=trader.id,
                market_date=day.date,
                min_stalls=body.min_stalls,
                max_stalls=body.max_stalls,
                preferred_stalls=body.preferred_stalls,
                anywhere=body.anywhere,
                needs=body.needs,
                submitted_at=now,
            ),
            tenant=market.tenant,
            subject=str(day_id),
        )
        row = (
            await uow.session.execute(select(store.applications).where(store.applications.c.id == app_id))
        ).one()
        return application_out(row, day)


async def _replace_earlier(uow: UnitOfWork, day: Any, trader_id: UUID, now: datetime) -> None:
    """Applying again replaces the trader's earlier application for the day, which counts as withdrawn."""
    earlier = await uow.session.execute(
        select(store.applications.c.id).where(
            store.applications.c.market_day_id == day.id,
            store.applications.c.trader_id == trader_id,
            store.applications.c.withdrawn_at.is_(None),
        )
    )
    for (application_id,) in earlier:
        await uow.session.execute(
            update(store.applications)
            .where(store.applications.c.id == application_id)
            .values(withdrawn_at=now)
        )
        uow.emit(
            contract.ApplicationWithdrawn(
                application_id=application_id, market_day_id=day.id, trader_id=trader_id, withdrawn_at=now
            ),
            tenant=day.tenant,
            subject=str(day.id),
        )


async def withdraw_application(
    uow_factory: UnitOfWorkFactory, principal: Principal, application_id: UUID
) -> models.ApplicationOut:
    async with uow_factory() as uow:
        trader = await own_trader(uow.session, principal)
        row = (
            await uow.session.execute(
                select(store.applications).where(store.applications.c.id == application_id)
            )
        ).one_or_none()
        # Another trader's application answers like a missing one.
        if row is None or row.trader_id != trader.id:
            raise Problem(404, "no such application")
        day, _ = await load_day(uow.session, principal, row.market_day_id)
        if row.withdrawn_at is not None:
            raise Problem(409, "the application was withdrawn already")
        if await _final_exists(uow.session, row.market_day_id):
            raise Problem(409, "the stalls of this day are allocated already; stay away to release them")
        now = utc_now()
        await uow.session.execute(
            update(store.applications)
            .where(store.applications.c.id == application_id)
            .values(withdrawn_at=now)
        )
        uow.emit(
            contract.ApplicationWithdrawn(
                application_id=application_id, market_day_id=day.id, trader_id=trader.id, withdrawn_at=now
            ),
            tenant=day.tenant,
            subject=str(day.id),
        )
        row = (
            await uow.session.execute(
                select(store.applications).where(store.applications.c.id == application_id)
            )
        ).one()
        return application_out(row, day)


async def own_applications(
    uow_factory: UnitOfWorkFactory, principal: Principal
) -> list[models.ApplicationOut]:
    async with uow_factory() as uow:
        trader = await own_trader(uow.session, principal)
        rows = await uow.session.execute(
            select(store.applications, store.market_days.c.date.label("day_date"))
            .join(store.market_days, store.market_days.c.id == store.applications.c.market_day_id)
            .where(store.applications.c.trader_id == trader.id)
            .order_by(store.market_days.c.date, store.applications.c.submitted_at)
        )
        return [application_out(row, _Day(row.day_date)) for row in rows]


async def day_applications(
    uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID
) -> list[models.ApplicationOut]:
    async with uow_factory() as uow:
        day, _ = await load_day(uow.session, principal, day_id)
        rows = await uow.session.execute(
            select(store.applications)
            .where(store.applications.c.market_day_id == day_id)
            .order_by(store.applications.c.submitted_at)
        )
        return [application_out(row, day) for row in rows]


class _Day:
    def __init__(self, day: date) -> None:
        self.date = day
