"""The market master's (and city admin's) work: markets, plans, days, traders, allocations, the day itself."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from fastapi import APIRouter, Query

from market import models
from market.api.deps import MarketMaster, MarketSettings
from market.handlers import allocating, attendance, markets, subscriptions, traders
from servicekit.service import UowFactory

router = APIRouter(tags=["market master"])


@router.post("/markets", status_code=201)
async def create_market(
    principal: MarketMaster, body: models.MarketIn, uow_factory: UowFactory
) -> models.MarketDetail:
    return await markets.create_market(uow_factory, principal, body)  # type: ignore[return-value]


@router.get("/markets/{market_id}")
async def get_market(
    market_id: UUID, principal: MarketMaster, uow_factory: UowFactory
) -> models.MarketDetail:
    return markets.market_out(await markets.get_market(uow_factory, principal, market_id), detail=True)  # type: ignore[return-value]


@router.put("/markets/{market_id}/plan")
async def replace_plan(
    market_id: UUID, principal: MarketMaster, body: models.PlanIn, uow_factory: UowFactory
) -> models.MarketDetail:
    return await markets.replace_plan(uow_factory, principal, market_id, body)  # type: ignore[return-value]


@router.post("/markets/{market_id}/days", status_code=201)
async def schedule_days(
    market_id: UUID, principal: MarketMaster, body: models.DaysIn, uow_factory: UowFactory
) -> list[models.MarketDayOut]:
    return await markets.schedule_days(uow_factory, principal, market_id, body)


@router.post("/market-days/{market_day_id}/cancellation")
async def cancel_day(
    market_day_id: UUID, principal: MarketMaster, body: models.CancelIn, uow_factory: UowFactory
) -> models.MarketDayOut:
    return await markets.cancel_day(uow_factory, principal, market_day_id, body.reason)


@router.get("/market-days/{market_day_id}/applications")
async def day_applications(
    market_day_id: UUID, principal: MarketMaster, uow_factory: UowFactory
) -> list[models.ApplicationOut]:
    return await traders.day_applications(uow_factory, principal, market_day_id)


@router.post("/market-days/{market_day_id}/allocations", status_code=201)
async def allocate(
    market_day_id: UUID,
    principal: MarketMaster,
    body: models.AllocationIn,
    uow_factory: UowFactory,
    settings: MarketSettings,
) -> models.AllocationOut:
    """A dry concept run (`final: false`) or the final allocation, which is published to the traders."""
    return await allocating.run_allocation(
        uow_factory, principal, market_day_id, body, default_time_limit_s=settings.solver_time_limit_s
    )


@router.get("/market-days/{market_day_id}/allocations")
async def allocations(
    market_day_id: UUID, principal: MarketMaster, uow_factory: UowFactory
) -> list[models.AllocationOut]:
    return await allocating.list_allocations(uow_factory, principal, market_day_id)


@router.post("/market-days/{market_day_id}/check-ins")
async def scan(
    market_day_id: UUID,
    principal: MarketMaster,
    body: models.ScanIn,
    uow_factory: UowFactory,
    settings: MarketSettings,
) -> models.CheckInOut:
    return await attendance.scan(uow_factory, principal, market_day_id, body.token, settings.checkin_key())


@router.post("/market-days/{market_day_id}/release-round", status_code=201)
async def release_round(
    market_day_id: UUID,
    principal: MarketMaster,
    body: models.ReleaseIn,
    uow_factory: UowFactory,
    settings: MarketSettings,
) -> models.AllocationOut:
    """Stalls of absent holders and no-shows go to the walk-ins present."""
    return await allocating.run_release_round(
        uow_factory,
        principal,
        market_day_id,
        body,
        time_limit_s=settings.solver_time_limit_s,
        enforce_release_time=settings.enforce_release_time,
    )


@router.get("/market-days/{market_day_id}/attendance")
async def day_attendance(
    market_day_id: UUID, principal: MarketMaster, uow_factory: UowFactory
) -> models.AttendanceOut:
    return await attendance.attendance(uow_factory, principal, market_day_id)


@router.get("/markets/{market_id}/attendance")
async def market_attendance(
    market_id: UUID, start: date, end: date, principal: MarketMaster, uow_factory: UowFactory
) -> models.AttendanceReportOut:
    """The attendance report of a period: who came, who did not, per day and per trader."""
    return await attendance.attendance_report(uow_factory, principal, market_id, start, end)


@router.post("/market-days/{market_day_id}/invoices", status_code=201)
async def invoice_day(
    market_day_id: UUID, principal: MarketMaster, uow_factory: UowFactory
) -> list[models.InvoiceOut]:
    return await attendance.invoice_day(uow_factory, principal, market_day_id)


@router.get("/market-days/{market_day_id}/invoices")
async def day_invoices(
    market_day_id: UUID, principal: MarketMaster, uow_factory: UowFactory
) -> list[models.InvoiceOut]:
    return await attendance.day_invoices(uow_factory, principal, market_day_id)


@router.post("/traders", status_code=201)
async def register_trader(
    principal: MarketMaster, body: models.TraderIn, uow_factory: UowFactory
) -> models.TraderOut:
    return await traders.register_trader(uow_factory, principal, body)


@router.get("/traders")
async def list_traders(principal: MarketMaster, uow_factory: UowFactory) -> list[models.TraderOut]:
    return await traders.list_traders(uow_factory, principal)


@router.post("/traders/{trader_id}/absences", status_code=204)
async def trader_absence(
    trader_id: UUID, principal: MarketMaster, body: models.AbsenceIn, uow_factory: UowFactory
) -> None:
    await traders.add_absence(uow_factory, principal, trader_id, body)


@router.post("/markets/{market_id}/subscriptions", status_code=201)
async def grant_subscription(
    market_id: UUID, principal: MarketMaster, body: models.SubscriptionIn, uow_factory: UowFactory
) -> models.SubscriptionOut:
    return await subscriptions.grant_subscription(uow_factory, principal, market_id, body)


@router.get("/markets/{market_id}/subscriptions")
async def market_subscriptions(
    market_id: UUID, principal: MarketMaster, uow_factory: UowFactory
) -> list[models.SubscriptionOut]:
    return await subscriptions.list_subscriptions(uow_factory, principal, market_id)


@router.post("/subscriptions/{subscription_id}/transfer")
async def transfer_subscription(
    subscription_id: UUID, principal: MarketMaster, body: models.TransferIn, uow_factory: UowFactory
) -> models.SubscriptionOut:
    return await subscriptions.transfer_subscription(uow_factory, principal, subscription_id, body)


@router.post("/subscriptions/{subscription_id}/end")
async def end_subscription(
    subscription_id: UUID, principal: MarketMaster, body: models.EndSubscriptionIn, uow_factory: UowFactory
) -> models.SubscriptionOut:
    return await subscriptions.end_subscription(uow_factory, principal, subscription_id, body)


@router.post("/markets/{market_id}/candidates", status_code=201)
async def register_candidate(
    market_id: UUID, principal: MarketMaster, body: models.CandidateIn, uow_factory: UowFactory
) -> list[models.CandidateOut]:
    return await subscriptions.register_candidate(uow_factory, principal, market_id, body)


@router.get("/markets/{market_id}/candidates")
async def candidate_register(
    market_id: UUID,
    principal: MarketMaster,
    uow_factory: UowFactory,
    specialisation: str | None = Query(default=None, max_length=100),
) -> list[models.CandidateOut]:
    """The chronological candidate register of one specialisation (none: traders without one)."""
    return await subscriptions.candidate_register(uow_factory, principal, market_id, specialisation)
