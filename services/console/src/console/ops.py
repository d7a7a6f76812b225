"""The city admins' ops console: service health, consumer lag, dead letters with replay, the live feed."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from console import feed
from console.clients import ServiceProblem, Services, ServicesClient
from console.i18n import translator
from console.session import User, base_path, requires
from console.web import language_of, render
from servicekit.problems import Problem
from servicekit.service import Context

router = APIRouter(include_in_schema=False)
Admin = Annotated[User, requires("city_admin")]
FeedWatcher = Annotated[User, requires("city_admin", "operator", "market_master")]
# The feed carries every party's events (citizens' trips, traders' invoices, shippers' orders): staff other
# than city admins watch only their own service's.
WATCHED_SERVICES = {"operator": frozenset({"logistics"}), "market_master": frozenset({"market"})}
_LAG_LINE = re.compile(r'^cityblocks_consumer_group_lag\{group="([^"]+)"\}\s+([0-9.e+]+)$', re.MULTILINE)


@dataclass
class ServiceHealth:
    name: str
    title: str
    ready: bool
    detail: str
    lag: dict[str, int] = field(default_factory=dict)


@router.get("/ops")
async def ops(request: Request, user: Admin, services: ServicesClient) -> Response:
    health = await service_health(services, request.app.state.settings.services)
    lags: dict[str, int] = {}
    for item in health:
        lags.update(item.lag)
    return render(request, "ops.html", user, health=health, lags=sorted(lags.items()))


async def service_health(services: Services, names: list[str]) -> list[ServiceHealth]:
    """Every service's readiness and its consumer lag figures, asked in parallel."""
    known = await _platform_services(services) or [(name, name) for name in names]
    return list(await asyncio.gather(*(_health(services, name, title) for name, title in known)))


async def _platform_services(services: Services) -> list[tuple[str, str]]:
    # The embedded platform lists what it mounted; a distributed run has no such list, then settings decide.
    try:
        response = await services.raw_get(f"{services.base_url}/services")
        if response.status_code == 200:
            return [(item["name"], item["title"]) for item in response.json()]
    except (ServiceProblem, ValueError, KeyError, TypeError):
        pass
    return []


async def _health(services: Services, name: str, title: str) -> ServiceHealth:
    try:
        ready = await services.request("GET", name, "/ready")
    except ServiceProblem as exc:
        return ServiceHealth(name, title, False, exc.detail)
    checks = _checks(ready)
    detail = ", ".join(f"{check}: {result}" for check, result in checks.items()) or ready.reason_phrase
    lag: dict[str, int] = {}
    try:
        metrics = await services.request("GET", name, "/metrics")
        lag = parse_lag(metrics.text) if metrics.status_code == 200 else {}
    except ServiceProblem:
        pass
    return ServiceHealth(name, title, ready.status_code == 200, detail, lag)


def _checks(response: Any) -> dict[str, str]:
    try:
        checks = response.json().get("checks", {})
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in checks.items()} if isinstance(checks, dict) else {}


def parse_lag(metrics: str) -> dict[str, int]:
    """`cityblocks_consumer_group_lag{group="market"} 3.0` lines of a Prometheus text page."""
    return {group: int(float(value)) for group, value in _LAG_LINE.findall(metrics)}


@router.get("/ops/dead-letters")
async def dead_letters(
    request: Request, user: Admin, services: ServicesClient, message: str = ""
) -> Response:
    names = [name for name, _ in await _platform_services(services)] or request.app.state.settings.services
    found = await asyncio.gather(*(_dead_letters_of(services, name) for name in names))
    letters = [letter for group in found for letter in group[0]]
    errors = [error for group in found for error in group[1]]
    letters.sort(key=lambda letter: str(letter.get("created_at", "")), reverse=True)
    return render(request, "dead_letters.html", user, letters=letters, errors=errors, message=message)


async def _dead_letters_of(services: Services, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        letters = await services.get(name, "/v1/dead-letters", include_replayed="true")
    except ServiceProblem as exc:
        return [], [] if exc.status == 404 else [f"{name}: {exc.detail}"]
    return [{**letter, "service": name} for letter in letters], []


@router.post("/ops/dead-letters/{service}/{dead_letter_id}/replay")
async def replay(
    request: Request,
    user: Admin,
    services: ServicesClient,
    service: str,
    dead_letter_id: int,
) -> Response:
    t = translator(language_of(request))
    try:
        await services.post(service, f"/v1/dead-letters/{dead_letter_id}/replay")
        message = t("replay_done", id=dead_letter_id)
    except ServiceProblem as exc:
        message = t("replay_failed", detail=exc.detail)
    return RedirectResponse(
        f"{base_path(request)}/ops/dead-letters?message={quote(message)}", status_code=303
    )


@router.get("/ops/feed")
async def feed_page(request: Request, user: Admin, context: Context) -> Response:
    events = await feed.recent(context.sessionmaker, user.tenant, limit=50)
    return render(request, "feed.html", user, events=events, services_filter="")


@router.get("/feed/recent")
async def feed_recent(user: FeedWatcher, context: Context, after: int = 0, service: str = "") -> list[Any]:
    """The newest events of the user's municipality as JSON (for pages that poll instead of streaming)."""
    return await feed.recent(context.sessionmaker, user.tenant, after=after, services=_watched(user, service))


@router.get("/feed/stream")
async def feed_stream(
    request: Request, user: FeedWatcher, context: Context, service: str = "", after: int | None = None
) -> Response:
    """Server-sent events of the user's municipality after `after` (the page's newest) or `Last-Event-ID`."""
    last = request.headers.get("last-event-id", "")
    if last.isdigit():
        after = int(last)
    elif after is None:
        after = await _newest_before_page(context, user)
    body = feed.stream(
        context.sessionmaker,
        user.tenant,
        after=after,
        services=_watched(user, service),
        disconnected=request.is_disconnected,
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def _newest_before_page(context: Any, user: User) -> int:
    newest = await feed.recent(context.sessionmaker, user.tenant, limit=1)
    return int(newest[-1]["id"]) if newest else 0


def _services(value: str) -> frozenset[str] | None:
    names = frozenset(name for name in value.split(",") if name)
    return names or None


def _watched(user: User, value: str) -> frozenset[str] | None:
    """The services whose events the user asked for and may watch (None: all of them)."""
    asked = _services(value)
    if user.has_role("city_admin"):
        return asked
    allowed = frozenset().union(*(WATCHED_SERVICES.get(role, frozenset()) for role in user.roles))
    watched = allowed & asked if asked is not None else allowed
    if not watched:
        raise Problem(403, f"this feed shows only events of: {', '.join(sorted(allowed))}")
    return watched
