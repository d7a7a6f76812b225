"""Key figures per service for city admins, each with a chart; a failing service blanks only its part."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.charts import bar_chart
from console.clients import ServiceProblem, Services, ServicesClient
from console.i18n import Translate, translator
from console.session import User, requires
from console.web import language_of, local_today, raw, render

router = APIRouter(include_in_schema=False)
Admin = Annotated[User, requires("city_admin")]
ON_TIME_SLACK = timedelta(minutes=15)
DAYS_PER_MARKET = 3


async def _part(call: Awaitable[Any]) -> tuple[Any, str | None]:
    try:
        return await call, None
    except ServiceProblem as exc:
        return None, f"{exc.service}: {exc.detail}"


@router.get("/kpis")
async def kpis(request: Request, user: Admin, services: ServicesClient) -> Response:
    t = translator(language_of(request))
    market, logistics, mobility, coins = await asyncio.gather(
        _part(market_occupancy(services, t)),
        _part(deliveries(services, t)),
        _part(credit_per_mode(services, t)),
        _part(coin_figures(services, t)),
    )
    return render(
        request, "kpis.html", user, market=market, logistics=logistics, mobility=mobility, coins=coins
    )


async def market_occupancy(services: Services, t: Translate) -> dict[str, Any]:
    """Stalls given by the latest allocation of each market's next days, as a share of the market's stalls."""
    markets = await services.get("market", "/v1/markets")
    rows: list[tuple[str, float]] = []
    for market in markets:
        today = local_today().isoformat()
        days = [
            d for d in await services.get("market", f"/v1/markets/{market['id']}/days") if d["date"] >= today
        ]
        for day in days[:DAYS_PER_MARKET]:
            runs = await services.get("market", f"/v1/market-days/{day['id']}/allocations")
            if runs and market["stall_count"]:
                share = 100 * runs[-1]["stalls_given"] / market["stall_count"]
                rows.append((f"{market['name']} {day['date'][5:]}", round(share, 1)))
    return {"rows": rows, "chart": raw(bar_chart(rows, title=t("kpi_occupancy"), unit=" %"))}


async def deliveries(services: Services, t: Translate) -> dict[str, Any]:
    """Today's stops of the latest completed plan: delivered on time, late, failed, still open."""
    runs = await services.get("logistics", "/v1/planning-runs", date=local_today().isoformat())
    done = [run for run in runs if run["status"] == "completed"]
    if not done:
        return {"rows": [], "chart": ""}
    latest = max(done, key=lambda run: run["created_at"])
    routes = await services.get("logistics", f"/v1/planning-runs/{latest['id']}/routes")
    counts = {"on_time": 0, "late": 0, "failed": 0, "open": 0}
    for stop in (stop for route in routes for stop in route["stops"]):
        counts[stop_class(stop)] += 1
    rows = [(t(f"kpi_stops_{name}"), float(count)) for name, count in counts.items()]
    total = counts["on_time"] + counts["late"]
    on_time = round(100 * counts["on_time"] / total, 1) if total else None
    return {"rows": rows, "on_time": on_time, "chart": raw(bar_chart(rows, title=t("kpi_deliveries")))}


def stop_class(stop: dict[str, Any]) -> str:
    """A stop is on time when it was completed within the slack after its planned service start."""
    if stop["status"] == "failed":
        return "failed"
    if stop["status"] != "done" or not stop.get("outcome_at"):
        return "open"
    done_at = datetime.fromisoformat(stop["outcome_at"])
    planned = datetime.fromisoformat(stop["service_start"])
    return "on_time" if done_at <= planned + ON_TIME_SLACK else "late"


async def credit_per_mode(services: Services, t: Translate) -> dict[str, Any]:
    report, schemes = await asyncio.gather(
        services.get("mobility-credit", "/v1/reports/summary"), services.get("mobility-credit", "/v1/schemes")
    )
    rows = [(t(f"mode_{item['mode']}"), item["amount_cents"] / 100) for item in report["per_mode"]]
    return {
        "report": report,
        "schemes": schemes,
        "chart": raw(bar_chart(rows, title=t("kpi_credit_per_mode"), unit=" €")),
    }


async def coin_figures(services: Services, t: Translate) -> dict[str, Any]:
    reports = await services.get("incentives", "/v1/reports/campaigns")
    issued = [(report["name"], float(report["issued"])) for report in reports]
    redeemed = [(report["name"], float(report["redeemed"])) for report in reports]
    left = [(report["name"], float(report["budget_left"])) for report in reports]
    return {
        "reports": reports,
        "issued": raw(bar_chart(issued, title=t("kpi_coins_issued"))),
        "redeemed": raw(bar_chart(redeemed, title=t("kpi_coins_redeemed"))),
        "left": raw(bar_chart(left, title=t("kpi_budget_left"))),
    }
