"""The trader's own pages: profile, applications, outcomes with reasons, check-in codes, invoices."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from market import checkin, models
from market.api.deps import Anyone, MarketSettings, Trader
from market.handlers import attendance, markets, traders, views
from servicekit.service import UowFactory

router = APIRouter(tags=["trader"])


@router.get("/me")
async def my_profile(principal: Trader, uow_factory: UowFactory) -> models.TraderOut:
    return await traders.get_own_profile(uow_factory, principal)


@router.put("/me")
async def register_me(principal: Trader, body: models.TraderIn, uow_factory: UowFactory) -> models.TraderOut:
    return await traders.update_own_profile(uow_factory, principal, body)


@router.post("/me/absences", status_code=204)
async def my_absence(principal: Trader, body: models.AbsenceIn, uow_factory: UowFactory) -> None:
    await traders.add_absence(uow_factory, principal, None, body)


@router.get("/markets")
async def tenant_markets(principal: Anyone, uow_factory: UowFactory) -> list[models.MarketOut]:
    return [markets.market_out(row) for row in await markets.list_markets(uow_factory, principal.tenant)]


@router.get("/markets/{market_id}/days")
async def market_days(
    market_id: UUID, principal: Anyone, uow_factory: UowFactory
) -> list[models.MarketDayOut]:
    return await markets.list_days(uow_factory, principal, market_id)


@router.get("/market-days/{market_day_id}")
async def market_day(market_day_id: UUID, principal: Anyone, uow_factory: UowFactory) -> models.MarketDayOut:
    return await markets.get_day(uow_factory, principal, market_day_id)


@router.post("/market-days/{market_day_id}/applications", status_code=201)
async def apply(
    market_day_id: UUID, principal: Trader, body: models.ApplicationIn, uow_factory: UowFactory
) -> models.ApplicationOut:
    return await traders.submit_application(uow_factory, principal, market_day_id, body)


@router.get("/me/applications")
async def my_applications(principal: Trader, uow_factory: UowFactory) -> list[models.ApplicationOut]:
    return await traders.own_applications(uow_factory, principal)


@router.delete("/me/applications/{application_id}")
async def withdraw(application_id: UUID, principal: Trader, uow_factory: UowFactory) -> models.ApplicationOut:
    return await traders.withdraw_application(uow_factory, principal, application_id)


@router.get("/me/market-days")
async def my_market_days(principal: Trader, uow_factory: UowFactory) -> list[models.MyDayOut]:
    """The stalls given (or the reason for none) on every allocated day."""
    return await views.own_days(uow_factory, principal)


@router.get("/me/assignments/{assignment_id}/check-in-code")
async def my_check_in_code(
    assignment_id: UUID, principal: Trader, uow_factory: UowFactory, settings: MarketSettings
) -> models.CheckInCodeOut:
    return await attendance.check_in_code(uow_factory, principal, assignment_id, settings.checkin_key())


@router.get("/me/assignments/{assignment_id}/check-in-code.svg", response_class=Response)
async def my_check_in_svg(
    assignment_id: UUID, principal: Trader, uow_factory: UowFactory, settings: MarketSettings
) -> Response:
    code = await attendance.check_in_code(uow_factory, principal, assignment_id, settings.checkin_key())
    return Response(
        checkin.qr_svg(code.token), media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


@router.get("/me/assignments/{assignment_id}/check-in-code.png", response_class=Response)
async def my_check_in_png(
    assignment_id: UUID, principal: Trader, uow_factory: UowFactory, settings: MarketSettings
) -> Response:
    code = await attendance.check_in_code(uow_factory, principal, assignment_id, settings.checkin_key())
    return Response(checkin.qr_png(code.token), media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/me/invoices")
async def my_invoices(principal: Trader, uow_factory: UowFactory) -> list[models.InvoiceOut]:
    return await attendance.own_invoices(uow_factory, principal)
