"""Logistics pages: operators plan with live progress and see routes on a map; drivers work their stops."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console import feed
from console.clients import ServiceProblem, ServicesClient
from console.i18n import translator
from console.session import User, base_path, requires
from console.web import language_of, local_today, render, unavailable
from servicekit.service import Context

router = APIRouter(include_in_schema=False)
Operator = Annotated[User, requires("operator", "city_admin")]
Driver = Annotated[User, requires("driver")]
LOGISTICS = "logistics"
FAILURE_REASONS = ("recipient_absent", "refused", "damaged", "no_access", "other")


def _day(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return local_today().isoformat()


@router.get("/logistics")
async def operations(
    request: Request, user: Operator, services: ServicesClient, day: str = "", message: str = ""
) -> Response:
    chosen = _day(day)
    try:
        orders, runs = await asyncio.gather(
            services.get(LOGISTICS, "/v1/orders", date=chosen),
            services.get(LOGISTICS, "/v1/planning-runs", date=chosen),
        )
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    counts: dict[str, int] = {}
    for order in orders:
        counts[order["status"]] = counts.get(order["status"], 0) + 1
    return render(
        request,
        "logistics.html",
        user,
        day=chosen,
        orders=orders,
        counts=sorted(counts.items()),
        runs=sorted(runs, key=lambda r: r["created_at"], reverse=True),
        message=message,
    )


@router.post("/logistics/planning-runs")
async def plan(
    request: Request,
    user: Operator,
    services: ServicesClient,
    day: Annotated[str, Form()] = "",
    time_limit_s: Annotated[float, Form(gt=0, le=300)] = 10.0,
) -> Response:
    body = {"delivery_date": _day(day), "time_limit_s": time_limit_s}
    base = base_path(request)
    try:
        run = await services.post(LOGISTICS, "/v1/planning-runs", json=body)
    except ServiceProblem as exc:
        return RedirectResponse(
            f"{base}/logistics?day={_day(day)}&message={quote(exc.detail)}", status_code=303
        )
    return RedirectResponse(f"{base}/logistics/runs/{run['id']}", status_code=303)


@router.get("/logistics/runs/{run_id}")
async def run_page(
    request: Request,
    user: Operator,
    services: ServicesClient,
    context: Context,
    run_id: str,
    message: str = "",
) -> Response:
    try:
        run = await services.get(LOGISTICS, f"/v1/planning-runs/{run_id}")
        routes = await services.get(LOGISTICS, f"/v1/planning-runs/{run_id}/routes") if _done(run) else []
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    events = await feed.recent(context.sessionmaker, user.tenant, services=frozenset({LOGISTICS}), limit=20)
    return render(
        request,
        "planning_run.html",
        user,
        run=run,
        routes=[_route_view(route) for route in routes],
        events=events,
        services_filter=LOGISTICS,
        message=message,
    )


def _done(run: dict[str, Any]) -> bool:
    return run.get("status") == "completed"


def _route_view(route: dict[str, Any]) -> dict[str, Any]:
    stops = route.get("stops", [])
    return {
        **route,
        "done": sum(1 for stop in stops if stop["status"] == "done"),
        "failed": sum(1 for stop in stops if stop["status"] == "failed"),
        "deliveries": sum(1 for stop in stops if stop["kind"] != "pickup"),
    }


@router.get("/logistics/runs/{run_id}/status")
async def run_status(user: Operator, services: ServicesClient, run_id: str) -> dict[str, Any]:
    """The run's status and latest solver progress, polled by the page while the solver runs."""
    try:
        run = await services.get(LOGISTICS, f"/v1/planning-runs/{run_id}")
    except ServiceProblem as exc:
        return {"status": "unknown", "error": exc.detail}
    return {"status": run["status"], "progress": run.get("progress"), "error": run.get("error")}


@router.get("/logistics/runs/{run_id}/map")
async def run_map(user: Operator, services: ServicesClient, run_id: str) -> Any:
    """The run's routes and stops as GeoJSON, for the Leaflet map."""
    try:
        return await services.get(LOGISTICS, f"/v1/planning-runs/{run_id}/map")
    except ServiceProblem:
        return {"type": "FeatureCollection", "features": []}


@router.post("/logistics/runs/{run_id}/dispatch")
async def dispatch(request: Request, user: Operator, services: ServicesClient, run_id: str) -> Response:
    t = translator(language_of(request))
    try:
        await services.post(LOGISTICS, f"/v1/planning-runs/{run_id}/dispatch")
        message = t("dispatched")
    except ServiceProblem as exc:
        message = exc.detail
    return RedirectResponse(
        f"{base_path(request)}/logistics/runs/{run_id}?message={quote(message)}", status_code=303
    )


@router.get("/driver")
async def driver_home(request: Request, user: Driver, services: ServicesClient) -> Response:
    try:
        routes = await services.get(LOGISTICS, "/v1/driver/routes")
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    if len(routes) == 1:
        return RedirectResponse(f"{base_path(request)}/driver/routes/{routes[0]['id']}", status_code=303)
    return render(request, "driver.html", user, routes=[_route_view(route) for route in routes])


@router.get("/driver/routes/{route_id}")
async def driver_route(
    request: Request, user: Driver, services: ServicesClient, route_id: str, message: str = ""
) -> Response:
    try:
        route = await services.get(LOGISTICS, f"/v1/routes/{route_id}")
    except ServiceProblem as exc:
        return unavailable(request, user, exc)
    return render(
        request, "driver_route.html", user, route=_route_view(route), reasons=FAILURE_REASONS, message=message
    )


@router.get("/driver/routes/{route_id}/map")
async def driver_map(user: Driver, services: ServicesClient, route_id: str) -> dict[str, Any]:
    try:
        route = await services.get(LOGISTICS, f"/v1/routes/{route_id}")
    except ServiceProblem:
        return {"type": "FeatureCollection", "features": []}
    return route_geojson(route)


def route_geojson(route: dict[str, Any]) -> dict[str, Any]:
    """One route as a line from its start through its stops, and its stops as numbered points."""
    path = [[route["start"]["lon"], route["start"]["lat"]]]
    path += [[s["location"]["lon"], s["location"]["lat"]] for s in route["stops"]]
    line = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": path},
        "properties": {"vehicle_code": route["vehicle_code"], "status": route["status"]},
    }
    points = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [s["location"]["lon"], s["location"]["lat"]]},
            "properties": {
                "route_id": route["id"],
                "seq": s["seq"],
                "status": s["status"],
                "eta": s["service_start"],
                "name": (s.get("recipient") or {}).get("name", ""),
            },
        }
        for s in route["stops"]
    ]
    return {"type": "FeatureCollection", "features": [line, *points]}


@router.post("/driver/routes/{route_id}/stops/{seq}/done")
async def stop_done(
    request: Request, user: Driver, services: ServicesClient, route_id: str, seq: int
) -> Response:
    return await _stop_outcome(request, services, route_id, seq, "done", {})


@router.post("/driver/routes/{route_id}/stops/{seq}/failed")
async def stop_failed(
    request: Request,
    user: Driver,
    services: ServicesClient,
    route_id: str,
    seq: int,
    reason: Annotated[str, Form(pattern="^(recipient_absent|refused|damaged|no_access|other)$")],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    return await _stop_outcome(request, services, route_id, seq, "failed", {"reason": reason, "note": note})


async def _stop_outcome(
    request: Request, services: Any, route_id: str, seq: int, outcome: str, body: dict[str, Any]
) -> Response:
    t = translator(language_of(request))
    try:
        await services.post(LOGISTICS, f"/v1/routes/{route_id}/stops/{seq}/{outcome}", json=body)
        message = t(f"stop_{outcome}", seq=seq)
    except ServiceProblem as exc:
        message = exc.detail
    target = f"{base_path(request)}/driver/routes/{route_id}?message={quote(message)}#stop-{seq}"
    return RedirectResponse(target, status_code=303)
