"""Market pages: traders apply on the market map and see their stalls, masters allocate, the public looks."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.clients import ServiceProblem, Services, ServicesClient
from console.i18n import translator
from console.plans import StallMark, plan_svg, stalls_of
from console.qr import qr_svg
from console.session import MaybeUser, User, base_path, requires
from console.web import language_of, local_today, raw, render, unavailable

router = APIRouter(include_in_schema=False)
Trader = Annotated[User, requires("trader")]
Master = Annotated[User, requires("market_master", "city_admin")]
MARKET = "market"
TENANT_NAMES = {"71022": "Hasselt", "13008": "Geel"}
UPCOMING_DAYS = 6


async def _optional(call: Any, default: Any) -> Any:
    """A call whose absence is not an error (e.g. a trader not registered yet)."""
    try:
        return await call
    except ServiceProblem as exc:
        if exc.status in (404, 403):
            return default
        raise


def _upcoming(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    today = local_today().isoformat()
    return [d for d in days if d.get("date", "") >= today and d.get("status") == "scheduled"][:UPCOMING_DAYS]


@router.get("/trader")
async def trader_home(
    request: Request, user: Trader, services: ServicesClient, message: str = ""
) -> Response:
    try:
        profile, markets, applications, outcomes = await asyncio.gather(
            _optional(services.get(MARKET, "/v1/me"), None),
            services.get(MARKET, "/v1/markets"),
            _optional(services.get(MARKET, "/v1/me/applications"), []),
            _optional(services.get(MARKET, "/v1/me/market-days"), []),
        )
        days = await asyncio.gather(*(services.get(MARKET, f"/v1/markets/{m['id']}/days") for m in markets))
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    for market, market_days in zip(markets, days, strict=True):
        market["upcoming"] = _upcoming(market_days)
    applied = {a["market_day_id"] for a in applications if not a.get("withdrawn_at")}
    return render(
        request,
        "trader.html",
        user,
        profile=profile,
        markets=markets,
        applications=[a for a in applications if not a.get("withdrawn_at")],
        applied=applied,
        outcomes=list(reversed(outcomes)),
        message=message,
    )


@router.get("/trader/markets/{market_id}/days/{market_day_id}/apply")
async def apply_page(
    request: Request,
    user: Trader,
    services: ServicesClient,
    market_id: str,
    market_day_id: str,
    error: str = "",
) -> Response:
    try:
        plan, days = await asyncio.gather(
            services.get(MARKET, f"/v1/public/markets/{market_id}/plan"),
            services.get(MARKET, f"/v1/markets/{market_id}/days"),
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    day = next((d for d in days if d["id"] == market_day_id), None)
    t = translator(language_of(request))
    svg = plan_svg(plan, title=t("market_plan"), interactive=True)
    return render(
        request,
        "apply.html",
        user,
        day=day,
        market_id=market_id,
        market_day_id=market_day_id,
        rows=plan.get("rows", []),
        plan=raw(svg),
        error=error,
    )


@router.post("/trader/markets/{market_id}/days/{market_day_id}/apply")
async def apply(
    request: Request,
    user: Trader,
    services: ServicesClient,
    market_id: str,
    market_day_id: str,
    stalls: Annotated[list[str] | None, Form()] = None,
    order: Annotated[str, Form(max_length=2000)] = "",
    min_stalls: Annotated[int, Form(ge=1, le=10)] = 1,
    max_stalls: Annotated[int, Form(ge=1, le=10)] = 1,
    anywhere: Annotated[str, Form()] = "",
    needs: Annotated[list[str] | None, Form()] = None,
) -> Response:
    body = {
        "min_stalls": min_stalls,
        "max_stalls": max(max_stalls, min_stalls),
        "preferred_stalls": ranked(stalls or [], order),
        "anywhere": bool(anywhere),
        "needs": needs or [],
    }
    base = base_path(request)
    try:
        await services.post(MARKET, f"/v1/market-days/{market_day_id}/applications", json=body)
    except ServiceProblem as exc:
        target = f"{base}/trader/markets/{market_id}/days/{market_day_id}/apply?error={quote(exc.detail)}"
        return RedirectResponse(target, status_code=303)
    message = translator(language_of(request))("application_sent")
    return RedirectResponse(f"{base}/trader?message={quote(message)}", status_code=303)


def ranked(chosen: list[str], order: str) -> list[str]:
    """The chosen stalls best first: in the order they were picked on the map, then the rest as listed."""
    picked = [number for number in order.split(",") if number in chosen]
    return list(dict.fromkeys([*picked, *chosen]))


@router.post("/trader/applications/{application_id}/withdraw")
async def withdraw(request: Request, user: Trader, services: ServicesClient, application_id: str) -> Response:
    t = translator(language_of(request))
    try:
        await services.call("DELETE", MARKET, f"/v1/me/applications/{application_id}")
        message = t("application_withdrawn")
    except ServiceProblem as exc:
        message = exc.detail
    return RedirectResponse(f"{base_path(request)}/trader?message={quote(message)}", status_code=303)


@router.get("/trader/assignments/{assignment_id}")
async def assignment(
    request: Request, user: Trader, services: ServicesClient, assignment_id: str
) -> Response:
    try:
        outcomes = await services.get(MARKET, "/v1/me/market-days")
        day = next((d for d in outcomes if d.get("assignment_id") == assignment_id), None)
        if day is None:
            raise ServiceProblem(MARKET, 404, "no such assignment")
        code, plan = await asyncio.gather(
            _optional(services.get(MARKET, f"/v1/me/assignments/{assignment_id}/check-in-code"), None),
            services.get(MARKET, f"/v1/public/markets/{day['market_id']}/plan"),
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    t = translator(language_of(request))
    marks = {number: StallMark("own", t("yours")) for number in day["stalls"]}
    return render(
        request,
        "assignment.html",
        user,
        day=day,
        code=code,
        qr=raw(qr_svg(code["token"], title=t("check_in_qr"))) if code else None,
        plan=raw(plan_svg(plan, marks, title=t("market_plan"))),
    )


@router.get("/trader/invoices")
async def invoices(request: Request, user: Trader, services: ServicesClient) -> Response:
    try:
        found = await _optional(services.get(MARKET, "/v1/me/invoices"), [])
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    return render(request, "invoices.html", user, invoices=found)


@router.get("/markets")
async def markets(request: Request, user: Master, services: ServicesClient) -> Response:
    try:
        found = await services.get(MARKET, "/v1/markets")
        days = await asyncio.gather(*(services.get(MARKET, f"/v1/markets/{m['id']}/days") for m in found))
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    for market, market_days in zip(found, days, strict=True):
        market["upcoming"] = _upcoming(market_days)
    return render(request, "markets.html", user, markets=found)


@router.get("/markets/{market_id}/days/{market_day_id}")
async def market_day(
    request: Request,
    user: Master,
    services: ServicesClient,
    market_id: str,
    market_day_id: str,
    message: str = "",
) -> Response:
    try:
        market, applications, allocations = await asyncio.gather(
            services.get(MARKET, f"/v1/markets/{market_id}"),
            services.get(MARKET, f"/v1/market-days/{market_day_id}/applications"),
            services.get(MARKET, f"/v1/market-days/{market_day_id}/allocations"),
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    latest = allocations[-1] if allocations else None
    t = translator(language_of(request))
    return render(
        request,
        "market_day.html",
        user,
        market=market,
        market_day_id=market_day_id,
        applications=applications,
        allocations=allocations,
        latest=latest,
        plan=raw(plan_svg(market["plan"], allocation_marks(latest), title=t("allocation_map"))),
        message=message,
    )


def allocation_marks(allocation: dict[str, Any] | None) -> dict[str, StallMark]:
    """Each given stall marked with its trader's name; free stalls stay unmarked."""
    if allocation is None:
        return {}
    marks = {}
    for given in allocation["assignments"]:
        for number in given["stalls"]:
            marks[number] = StallMark("taken", _initials(given["trader_name"]), given["trader_name"])
    return marks


def _initials(name: str) -> str:
    return "".join(part[0] for part in name.split()[:3] if part).upper()


@router.post("/markets/{market_id}/days/{market_day_id}/allocations")
async def allocate(
    request: Request,
    user: Master,
    services: ServicesClient,
    market_id: str,
    market_day_id: str,
    final: Annotated[str, Form()] = "",
    solver: Annotated[str, Form(pattern="^(cp-sat|greedy)$")] = "cp-sat",
) -> Response:
    t = translator(language_of(request))
    body = {"final": bool(final), "solver": solver}
    try:
        result = await services.post(MARKET, f"/v1/market-days/{market_day_id}/allocations", json=body)
        message = t("allocation_done", given=result["stalls_given"], rejected=len(result["rejections"]))
    except ServiceProblem as exc:
        message = t("allocation_failed", detail=exc.detail)
    target = f"{base_path(request)}/markets/{market_id}/days/{market_day_id}?message={quote(message)}"
    return RedirectResponse(target, status_code=303)


@router.post("/markets/{market_id}/days/{market_day_id}/check-ins")
async def check_in(
    request: Request,
    user: Master,
    services: ServicesClient,
    market_id: str,
    market_day_id: str,
    token: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    """The master scanned (or typed) a trader's check-in QR code."""
    t = translator(language_of(request))
    try:
        body = {"token": token.strip()}
        done = await services.post(MARKET, f"/v1/market-days/{market_day_id}/check-ins", json=body)
        key = "already_checked_in" if done["already_checked_in"] else "checked_in"
        message = t(key, name=done["trader_name"], stalls=", ".join(done["stalls"]))
    except ServiceProblem as exc:
        message = t("check_in_failed", detail=exc.detail)
    target = f"{base_path(request)}/markets/{market_id}/days/{market_day_id}?message={quote(message)}"
    return RedirectResponse(target, status_code=303)


@router.get("/public/markets")
async def public_markets(request: Request, user: MaybeUser, services: ServicesClient) -> Response:
    try:
        found = await services.get(MARKET, "/v1/public/markets")
        days = await asyncio.gather(
            *(services.get(MARKET, f"/v1/public/markets/{m['id']}/days") for m in found)
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    for market, market_days in zip(found, days, strict=True):
        market["upcoming"] = _upcoming(market_days)
        market["city"] = TENANT_NAMES.get(market["tenant"], market["tenant"])
    return render(request, "public_markets.html", user, markets=found)


@router.get("/public/markets/{market_id}/days/{market_day_id}")
async def public_day(
    request: Request,
    user: MaybeUser,
    services: ServicesClient,
    market_id: str,
    market_day_id: str,
    product: str = "",
) -> Response:
    try:
        day, plan = await asyncio.gather(
            _public_day(services, market_day_id, product.strip()),
            services.get(MARKET, f"/v1/public/markets/{market_id}/plan"),
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    marks = {
        stall["number"]: StallMark(
            "found" if product else "taken", _initials(stall["trader_name"]), stall["trader_name"]
        )
        for stall in day["stalls"]
    }
    t = translator(language_of(request))
    stalls = sorted(day["stalls"], key=lambda s: (s["row"], _natural(s["number"])))
    return render(
        request,
        "public_day.html",
        user,
        day=day,
        product=product,
        stalls=stalls,
        market_id=market_id,
        plan=raw(plan_svg(plan, marks, title=t("market_plan"))),
        stall_count=len(stalls_of(plan)),
    )


async def _public_day(services: Services, market_day_id: str, product: str) -> Any:
    params = {"product": product} if product else {}
    return await services.get(MARKET, f"/v1/public/market-days/{market_day_id}", **params)


def _natural(number: str) -> tuple[str, int]:
    digits = "".join(ch for ch in number if ch.isdigit())
    return ("".join(ch for ch in number if not ch.isdigit()), int(digits) if digits else 0)
