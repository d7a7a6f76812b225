"""Incentives pages: citizens' coins and one-time QR codes, merchants' till, the city's campaigns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.clients import ServiceProblem, ServicesClient
from console.i18n import translator
from console.qr import qr_svg
from console.session import User, base_path, requires
from console.web import language_of, raw, render, unavailable

router = APIRouter(include_in_schema=False)
Citizen = Annotated[User, requires("citizen")]
Merchant = Annotated[User, requires("merchant")]
Admin = Annotated[User, requires("city_admin")]
INCENTIVES = "incentives"


@router.get("/coins")
async def coins(request: Request, user: Citizen, services: ServicesClient, message: str = "") -> Response:
    try:
        # One after the other: a first visit may open the wallets, which should not race another read.
        wallets = await services.get(INCENTIVES, "/v1/wallet")
        claims = await services.get(INCENTIVES, "/v1/claims/mine")
        histories = await asyncio.gather(
            *(services.get(INCENTIVES, f"/v1/wallet/{w['coin_type_id']}/history") for w in wallets)
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    for wallet, history in zip(wallets, histories, strict=True):
        wallet["history"] = sorted(history, key=lambda entry: entry["at"], reverse=True)[:20]
    return render(request, "coins.html", user, wallets=wallets, claims=claims, message=message)


@router.post("/coins/{coin_type_id}/qr")
async def coin_qr(
    request: Request,
    user: Citizen,
    services: ServicesClient,
    coin_type_id: str,
    max_amount: Annotated[int | None, Form(gt=0)] = None,
) -> Response:
    """A fresh one-time QR code: shown once on this page, never stored by the console."""
    body: dict[str, Any] = {"coin_type_id": coin_type_id}
    if max_amount:
        body["max_amount"] = max_amount
    try:
        code, wallets = await asyncio.gather(
            services.post(INCENTIVES, "/v1/wallet/qr", json=body), services.get(INCENTIVES, "/v1/wallet")
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    wallet = next((w for w in wallets if w["coin_type_id"] == coin_type_id), None)
    t = translator(language_of(request))
    qr = raw(qr_svg(code["payload"], title=t("pay_qr")))
    return render(request, "coin_qr.html", user, code=code, qr=qr, wallet=wallet)


@router.post("/coins/claims")
async def claim(
    request: Request,
    user: Citizen,
    services: ServicesClient,
    campaign_id: Annotated[str, Form(max_length=100)],
    evidence: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    t = translator(language_of(request))
    try:
        body = {"campaign_id": campaign_id.strip(), "evidence": evidence}
        await services.post(INCENTIVES, "/v1/claims", json=body)
        message = t("claim_sent")
    except ServiceProblem as exc:
        message = t("claim_failed", detail=exc.detail)
    return RedirectResponse(f"{base_path(request)}/coins?message={quote(message)}", status_code=303)


@router.get("/till")
async def till(
    request: Request, user: Merchant, services: ServicesClient, message: str = "", ok: str = ""
) -> Response:
    try:
        shops, balances, statements = await asyncio.gather(
            services.get(INCENTIVES, "/v1/merchants"),
            services.get(INCENTIVES, "/v1/merchant/balances"),
            services.get(INCENTIVES, "/v1/merchant/statements"),
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    return render(
        request,
        "till.html",
        user,
        shops=shops,
        balances=balances,
        statements=statements,
        message=message,
        ok=bool(ok),
    )


@router.post("/till/redemptions")
async def redeem(
    request: Request,
    user: Merchant,
    services: ServicesClient,
    merchant_id: Annotated[str, Form(max_length=100)],
    qr: Annotated[str, Form(min_length=1, max_length=1000)],
    amount: Annotated[int, Form(gt=0, le=1_000_000)],
) -> Response:
    t = translator(language_of(request))
    body = {"qr": qr.strip(), "merchant_id": merchant_id, "amount": amount}
    try:
        result = await services.post(INCENTIVES, "/v1/redemptions", json=body)
        message, ok = t("redeemed", amount=result["amount"]), "1"
    except ServiceProblem as exc:
        message, ok = t("redeem_failed", detail=exc.detail), ""
    return RedirectResponse(f"{base_path(request)}/till?ok={ok}&message={quote(message)}", status_code=303)


@router.get("/campaigns")
async def campaigns(request: Request, user: Admin, services: ServicesClient, message: str = "") -> Response:
    try:
        found, reports, to_review, coin_types = await asyncio.gather(
            services.get(INCENTIVES, "/v1/campaigns"),
            services.get(INCENTIVES, "/v1/reports/campaigns"),
            services.get(INCENTIVES, "/v1/claims"),
            services.get(INCENTIVES, "/v1/coin-types"),
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    by_id = {report["campaign_id"]: report for report in reports}
    for campaign in found:
        campaign["report"] = by_id.get(campaign["id"])
    return render(
        request,
        "campaigns.html",
        user,
        campaigns=found,
        claims=to_review,
        coin_types=coin_types,
        message=message,
    )


@router.post("/campaigns")
async def launch(
    request: Request,
    user: Admin,
    services: ServicesClient,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    sponsor: Annotated[str, Form(min_length=1, max_length=200)],
    coin_type_id: Annotated[str, Form(max_length=100)],
    budget_coins: Annotated[int, Form(gt=0)],
    reward_coins: Annotated[int, Form(gt=0)],
) -> Response:
    """A campaign rewarding approved claims (the common case for schools and volunteering)."""
    body = {
        "name": name,
        "sponsor": sponsor,
        "coin_type_id": coin_type_id,
        "budget_coins": budget_coins,
        "valid_from": datetime.now(UTC).isoformat(),
        "rules": [{"trigger": "claim", "reward_coins": reward_coins}],
    }
    t = translator(language_of(request))
    try:
        await services.post(INCENTIVES, "/v1/campaigns", json=body)
        message = t("campaign_launched", name=name)
    except ServiceProblem as exc:
        message = exc.detail
    return RedirectResponse(f"{base_path(request)}/campaigns?message={quote(message)}", status_code=303)


@router.post("/campaigns/{campaign_id}/end")
async def end(request: Request, user: Admin, services: ServicesClient, campaign_id: str) -> Response:
    t = translator(language_of(request))
    try:
        await services.post(INCENTIVES, f"/v1/campaigns/{campaign_id}/end")
        message = t("campaign_ended")
    except ServiceProblem as exc:
        message = exc.detail
    return RedirectResponse(f"{base_path(request)}/campaigns?message={quote(message)}", status_code=303)


@router.post("/campaigns/claims/{claim_id}")
async def decide(
    request: Request,
    user: Admin,
    services: ServicesClient,
    claim_id: str,
    approve: Annotated[str, Form(pattern="^(yes|no)$")],
) -> Response:
    t = translator(language_of(request))
    try:
        body = {"approve": approve == "yes"}
        await services.post(INCENTIVES, f"/v1/claims/{claim_id}/decision", json=body)
        message = t("claim_decided")
    except ServiceProblem as exc:
        message = exc.detail
    return RedirectResponse(f"{base_path(request)}/campaigns?message={quote(message)}", status_code=303)
