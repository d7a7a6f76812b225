"""Mobility credit pages: citizens' budget and history with their pass, providers registering paid trips."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.clients import ServiceProblem, ServicesClient
from console.i18n import translator
from console.qr import qr_svg
from console.session import User, base_path, requires
from console.web import language_of, money, raw, render, unavailable

router = APIRouter(include_in_schema=False)
Citizen = Annotated[User, requires("citizen")]
Provider = Annotated[User, requires("provider")]
Admin = Annotated[User, requires("city_admin")]
MOBILITY = "mobility-credit"
MODES = ("bus", "train", "shared_bike", "car_sharing", "taxi", "bike_parking")


@router.get("/wallet")
async def wallet(request: Request, user: Citizen, services: ServicesClient) -> Response:
    try:
        found, history = await asyncio.gather(
            services.get(MOBILITY, "/v1/me/wallet"), services.get(MOBILITY, "/v1/me/history")
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    t = translator(language_of(request))
    # The pass carries only the citizen's identifier: a provider scans it to charge a trip to the budget.
    mobility_pass = raw(qr_svg(user.principal.subject, title=t("mobility_pass")))
    history = sorted(history, key=lambda item: item["at"], reverse=True)
    return render(request, "wallet.html", user, wallet=found, history=history, mobility_pass=mobility_pass)


@router.get("/provider")
async def provider(
    request: Request, user: Provider, services: ServicesClient, message: str = "", ok: str = ""
) -> Response:
    try:
        providers = await services.get(MOBILITY, "/v1/providers")
        trips = await asyncio.gather(
            *(services.get(MOBILITY, f"/v1/providers/{p['id']}/trips") for p in providers)
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    recent = sorted(
        (trip for found in trips for trip in found), key=lambda trip: trip["paid_at"], reverse=True
    )
    names = {p["id"]: p["name"] for p in providers}
    return render(
        request,
        "provider.html",
        user,
        providers=providers,
        trips=recent[:30],
        names=names,
        modes=MODES,
        payment_key=str(uuid.uuid4()),
        consumed_at=datetime.now(UTC).isoformat(),
        message=message,
        ok=bool(ok),
    )


@router.post("/provider/trips")
async def pay_trip(
    request: Request,
    user: Provider,
    services: ServicesClient,
    provider_id: Annotated[str, Form(max_length=100)],
    citizen_id: Annotated[str, Form(min_length=1, max_length=200)],
    mode: Annotated[str, Form(pattern="^(bus|train|shared_bike|car_sharing|taxi|bike_parking)$")],
    fare_cents: Annotated[int, Form(gt=0, le=1_000_000)],
    place: Annotated[str, Form(min_length=1, max_length=200)],
    payment_key: Annotated[str, Form(min_length=1, max_length=200)],
    consumed_at: Annotated[datetime | None, Form()] = None,
) -> Response:
    """Charge a trip; the form's payment key makes a double submit pay once. The form also carries when it
    was opened: a submit sent again (after a lost answer) is then the same request, answered as paid."""
    t = translator(language_of(request))
    body: dict[str, Any] = {
        "citizen_id": citizen_id.strip(),
        "mode": mode,
        "place": {"name": place},
        "consumed_at": (consumed_at or datetime.now(UTC)).isoformat(),
        "total_cents": fare_cents,
    }
    try:
        trip = await services.post(
            MOBILITY,
            f"/v1/providers/{provider_id}/trips",
            json=body,
            headers={"Idempotency-Key": payment_key},
        )
        shares = {"city": money(trip["city_share_cents"]), "citizen": money(trip["citizen_share_cents"])}
        message, ok = t("trip_paid", **shares), "1"
    except ServiceProblem as exc:
        message, ok = t("trip_failed", detail=exc.detail), ""
    return RedirectResponse(
        f"{base_path(request)}/provider?ok={ok}&message={quote(message)}", status_code=303
    )


@router.get("/schemes")
async def schemes(request: Request, user: Admin, services: ServicesClient, message: str = "") -> Response:
    try:
        found, report = await asyncio.gather(
            services.get(MOBILITY, "/v1/schemes"), services.get(MOBILITY, "/v1/reports/summary")
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    figures = {item["scheme_id"]: item for item in report["schemes"]}
    return render(request, "schemes.html", user, schemes=found, figures=figures, message=message)


@router.post("/schemes/{scheme_id}/grants")
async def grant(
    request: Request,
    user: Admin,
    services: ServicesClient,
    scheme_id: str,
    citizen_id: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    t = translator(language_of(request))
    try:
        done = await services.post(
            MOBILITY, f"/v1/schemes/{scheme_id}/grants", json={"citizen_id": citizen_id.strip()}
        )
        message = t("granted_to", amount=money(done["amount_cents"]), scheme=done["scheme_name"])
    except ServiceProblem as exc:
        message = t("grant_failed", detail=exc.detail)
    return RedirectResponse(f"{base_path(request)}/schemes?message={quote(message)}", status_code=303)
