"""On the day: check-in codes and scans, attendance and no-shows, the daily fee invoices."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import market as contract
from eventbus import UnitOfWorkFactory
from market import checkin, domain, models, store
from market.handlers.loading import day_times, domain_plan, load_day, load_market, own_trader, utc_now
from servicekit.auth import Principal
from servicekit.problems import Problem

PAYMENT_TERM = timedelta(days=30)


async def _assignment(session: AsyncSession, assignment_id: UUID) -> Any:
    return (
        await session.execute(select(store.assignments).where(store.assignments.c.id == assignment_id))
    ).one_or_none()


async def check_in_code(
    uow_factory: UnitOfWorkFactory, principal: Principal, assignment_id: UUID, secret: bytes
) -> models.CheckInCodeOut:
    """The signed code of one of the caller's own assignments, valid until the market closes."""
    async with uow_factory() as uow:
        trader = await own_trader(uow.session, principal)
        assignment = await _assignment(uow.session, assignment_id)
        if assignment is None or assignment.trader_id != trader.id:
            raise Problem(404, "no such assignment")
        if assignment.released_at is not None:
            raise Problem(409, "this stall was released")
        day, market = await load_day(uow.session, principal, assignment.market_day_id)
    expires_at = day_times(market, day.date).closes_at
    token = checkin.sign(checkin.CheckInClaim(assignment.id, day.id, expires_at), secret)
    base = f"/v1/me/assignments/{assignment_id}/check-in-code"
    return models.CheckInCodeOut(
        assignment_id=assignment.id,
        token=token,
        expires_at=expires_at,
        svg_path=f"{base}.svg",
        png_path=f"{base}.png",
    )


async def scan(
    uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID, token: str, secret: bytes
) -> models.CheckInOut:
    """The market master scanned a code: the trader is present (scanning twice changes nothing)."""
    try:
        claim = checkin.verify(token, secret, now=utc_now())
    except checkin.InvalidCheckInCode as error:
        raise Problem(
            422,
            f"token: {error}",
            errors=[{"loc": ["body", "token"], "msg": str(error), "type": "invalid_code"}],
        ) from None
    if claim.market_day_id != day_id:
        raise Problem(422, "token: the code is for another market day", errors=[{"loc": ["body", "token"]}])
    async with uow_factory() as uow:
        _, market = await load_day(uow.session, principal, day_id)
        assignment = await _assignment(uow.session, claim.assignment_id)
        if assignment is None or assignment.market_day_id != day_id:
            raise Problem(404, "no such assignment")
        if assignment.released_at is not None:
            raise Problem(409, "this trader's stalls were released")
        trader = (
            await uow.session.execute(select(store.traders).where(store.traders.c.id == assignment.trader_id))
        ).one()
        already = assignment.checked_in_at is not None
        at: datetime = assignment.checked_in_at or utc_now()
        if not already:
            await uow.session.execute(
                update(store.assignments)
                .where(store.assignments.c.id == assignment.id)
                .values(checked_in_at=at)
            )
            uow.emit(
                contract.TraderCheckedIn(
                    market_day_id=day_id,
                    market_id=market.id,
                    trader_id=trader.id,
                    stall_numbers=assignment.stalls,
                    checked_in_at=at,
                ),
                tenant=market.tenant,
                subject=str(day_id),
            )
        return models.CheckInOut(
            assignment_id=assignment.id,
            trader_id=trader.id,
            trader_name=trader.name,
            stalls=assignment.stalls,
            checked_in_at=at,
            already_checked_in=already,
        )


def _status(
    assignment: Any, release_at: datetime, now: datetime
) -> Literal["present", "no_show", "expected", "released"]:
    if assignment.checked_in_at is not None:
        return "present"
    if assignment.released_at is not None:
        return "released"
    return "no_show" if now >= release_at else "expected"


async def attendance(
    uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID
) -> models.AttendanceOut:
    async with uow_factory() as uow:
        day, market = await load_day(uow.session, principal, day_id)
        rows = await uow.session.execute(
            select(store.assignments, store.traders.c.name)
            .join(store.traders, store.traders.c.id == store.assignments.c.trader_id)
            .where(store.assignments.c.market_day_id == day_id)
            .order_by(store.traders.c.name)
        )
        release_at = day_times(market, day.date).release_at
        now = utc_now()
        lines = [
            models.AttendanceLine(
                trader_id=row.trader_id,
                trader_name=row.name,
                stalls=row.stalls,
                holder=row.holder,
                status=_status(row, release_at, now),
                checked_in_at=row.checked_in_at,
            )
            for row in rows
        ]
    return models.AttendanceOut(
        market_day_id=day.id,
        market_date=day.date,
        assigned=len(lines),
        present=sum(line.status == "present" for line in lines),
        no_shows=sum(line.status == "no_show" for line in lines),
        released=sum(line.status == "released" for line in lines),
        traders=lines,
    )


async def attendance_report(
    uow_factory: UnitOfWorkFactory, principal: Principal, market_id: UUID, start: date, end: date
) -> models.AttendanceReportOut:
    """Per day of the market between `start` and `end`, and per trader over those days."""
    async with uow_factory() as uow:
        await load_market(uow.session, principal, market_id)
        day_ids = [
            day_id
            for (day_id,) in await uow.session.execute(
                select(store.market_days.c.id)
                .where(
                    store.market_days.c.market_id == market_id,
                    store.market_days.c.date >= start,
                    store.market_days.c.date <= end,
                )
                .order_by(store.market_days.c.date)
            )
        ]
    days = [await attendance(uow_factory, principal, day_id) for day_id in day_ids]
    per_trader: dict[UUID, models.TraderAttendance] = {}
    for day in days:
        for line in day.traders:
            seen = per_trader.setdefault(
                line.trader_id,
                models.TraderAttendance(
                    trader_id=line.trader_id,
                    trader_name=line.trader_name,
                    assigned_days=0,
                    present_days=0,
                    no_show_days=0,
                ),
            )
            seen.assigned_days += 1
            seen.present_days += line.status == "present"
            seen.no_show_days += line.status in ("no_show", "released")
    return models.AttendanceReportOut(
        market_id=market_id,
        start=start,
        end=end,
        days=[day.model_copy(update={"traders": []}) for day in days],
        traders=sorted(per_trader.values(), key=lambda t: (-t.no_show_days, t.trader_name)),
    )


def fee_lines(stalls: list[domain.Stall], tariff: domain.Tariff, electricity: bool) -> list[contract.FeeLine]:
    """The invoice lines of a daily fee; they add up to `domain.daily_fee` for the same stalls."""
    metres = sum((stall.length_m for stall in stalls), Decimal(0))
    lines = [
        contract.FeeLine(
            description=f"Standgeld per stall ({', '.join(s.number for s in stalls)})",
            unit="stall",
            quantity_hundredths=100 * len(stalls),
            unit_price_cents=tariff.per_stall_cents,
            amount_cents=tariff.per_stall_cents * len(stalls),
        )
    ]
    if tariff.per_metre_cents:
        amount = (metres * tariff.per_metre_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        lines.append(
            contract.FeeLine(
                description=f"Standgeld per metre ({metres} m)",
                unit="metre",
                quantity_hundredths=int(metres * 100),
                unit_price_cents=tariff.per_metre_cents,
                amount_cents=int(amount),
            )
        )
    if electricity and tariff.electricity_cents:
        lines.append(
            contract.FeeLine(
                description="Electricity",
                unit="connection",
                quantity_hundredths=100,
                unit_price_cents=tariff.electricity_cents,
                amount_cents=tariff.electricity_cents,
            )
        )
    return lines


async def _needs_electricity(session: AsyncSession, day_id: UUID, trader_id: UUID) -> bool:
    rows = await session.execute(
        select(store.applications.c.needs).where(
            store.applications.c.market_day_id == day_id,
            store.applications.c.trader_id == trader_id,
            store.applications.c.withdrawn_at.is_(None),
        )
    )
    return any("electricity" in needs for (needs,) in rows)


async def invoice_day(
    uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID
) -> list[models.InvoiceOut]:
    """Invoice the daily fee to every trader checked in on the day who has no invoice for it yet."""
    async with uow_factory() as uow:
        day, market = await load_day(uow.session, principal, day_id)
        plan = domain_plan(market)
        tariff = store.regulation_of(market.regulation).tariff
        invoiced = {
            trader_id
            for (trader_id,) in await uow.session.execute(
                select(store.invoices.c.trader_id).where(store.invoices.c.market_day_id == day_id)
            )
        }
        present = await uow.session.execute(
            select(store.assignments, store.traders.c.kbo_number, store.traders.c.name)
            .join(store.traders, store.traders.c.id == store.assignments.c.trader_id)
            .where(
                store.assignments.c.market_day_id == day_id, store.assignments.c.checked_in_at.is_not(None)
            )
        )
        now = utc_now()
        created = []
        for row in present:
            if row.trader_id in invoiced:
                continue
            stalls = [plan.stall(number) for number in row.stalls]
            has_power = any(domain.StallFeature.ELECTRICITY in s.features for s in stalls)
            electricity = has_power and (
                row.holder or await _needs_electricity(uow.session, day_id, row.trader_id)
            )
            lines = fee_lines(stalls, tariff, electricity)
            total = domain.daily_fee(stalls, tariff, electricity=electricity)
            assert total == sum(line.amount_cents for line in lines)
            invoice_id = uuid.uuid4()
            number = f"{market.tenant}-{day.date:%Y%m%d}-{invoice_id.hex[:8].upper()}"
            await uow.session.execute(
                insert(store.invoices).values(
                    id=invoice_id,
                    tenant=market.tenant,
                    number=number,
                    trader_id=row.trader_id,
                    market_day_id=day_id,
                    lines=[line.model_dump(mode="json") for line in lines],
                    total_cents=total,
                    due_on=(now + PAYMENT_TERM).date(),
                    issued_at=now,
                )
            )
            uow.emit(
                contract.FeeInvoiced(
                    invoice_id=invoice_id,
                    invoice_number=number,
                    trader_id=row.trader_id,
                    kbo_number=row.kbo_number,
                    market_id=market.id,
                    market_day_id=day_id,
                    market_date=day.date,
                    lines=lines,
                    total_cents=total,
                    due_on=(now + PAYMENT_TERM).date(),
                    invoiced_at=now,
                ),
                tenant=market.tenant,
                subject=str(row.trader_id),
            )
            created.append(invoice_id)
        return await _invoices(uow.session, store.invoices.c.id.in_(created))


async def _invoices(session: AsyncSession, where: Any) -> list[models.InvoiceOut]:
    rows = await session.execute(
        select(
            store.invoices, store.traders.c.name.label("trader_name"), store.market_days.c.date.label("day")
        )
        .join(store.traders, store.traders.c.id == store.invoices.c.trader_id)
        .join(store.market_days, store.market_days.c.id == store.invoices.c.market_day_id)
        .where(where)
        .order_by(store.market_days.c.date, store.invoices.c.number)
    )
    return [
        models.InvoiceOut(
            id=row.id,
            number=row.number,
            trader_id=row.trader_id,
            trader_name=row.trader_name,
            market_day_id=row.market_day_id,
            market_date=row.day,
            lines=[models.FeeLineOut.model_validate(line) for line in row.lines],
            total_cents=row.total_cents,
            due_on=row.due_on,
            issued_at=row.issued_at,
        )
        for row in rows
    ]


async def own_invoices(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[models.InvoiceOut]:
    async with uow_factory() as uow:
        trader = await own_trader(uow.session, principal)
        return await _invoices(uow.session, store.invoices.c.trader_id == trader.id)


async def day_invoices(
    uow_factory: UnitOfWorkFactory, principal: Principal, day_id: UUID
) -> list[models.InvoiceOut]:
    async with uow_factory() as uow:
        await load_day(uow.session, principal, day_id)
        return await _invoices(uow.session, store.invoices.c.market_day_id == day_id)
