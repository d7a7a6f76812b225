"""Public read endpoints (no login): the markets, their plans and days, and who sells what where."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query

from market import models
from market.handlers import markets, views
from servicekit.service import UowFactory

router = APIRouter(prefix="/public", tags=["public"])


@router.get("/markets")
async def public_markets(
    uow_factory: UowFactory, tenant: str | None = Query(default=None, max_length=20)
) -> list[models.PublicMarketOut]:
    rows = await markets.list_markets(uow_factory, tenant)
    return [models.PublicMarketOut.model_validate(markets.market_out(row).model_dump()) for row in rows]


@router.get("/markets/{market_id}/plan")
async def public_plan(market_id: UUID, uow_factory: UowFactory) -> models.PlanIn:
    row = await markets.get_market(uow_factory, None, market_id)
    return models.PlanIn.model_validate(row.plan)


@router.get("/markets/{market_id}/days")
async def public_days(market_id: UUID, uow_factory: UowFactory) -> list[models.MarketDayOut]:
    return await markets.list_days(uow_factory, None, market_id, lambda day: day.status == "scheduled")


@router.get("/market-days/{market_day_id}")
async def public_day(
    market_day_id: UUID,
    uow_factory: UowFactory,
    product: str | None = Query(default=None, max_length=100, description="keep traders selling this"),
) -> models.PublicDayOut:
    return await views.public_day(uow_factory, market_day_id, product)
