"""Routes every service has: liveness, readiness, Prometheus metrics, and the dead-letter admin API."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from prometheus_client import Gauge
from pydantic import BaseModel
from sqlalchemy import select

from eventbus import ReplayFailed, list_dead_letters, replay
from eventbus.tables import dead_letters
from servicekit.auth import Principal, Role, require_roles
from servicekit.db import ping
from servicekit.observability import metrics_response
from servicekit.problems import Problem
from servicekit.service import Context, ServiceContext

CHECK_TIMEOUT_S = 2.0


@cache
def group_lag_gauge() -> Gauge:
    return Gauge("cityblocks_consumer_group_lag", "Records not yet processed, per consumer group", ["group"])


class Health(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    status: str
    service: str
    checks: dict[str, str]


def operations_router(service: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health")
    async def health() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok", service=service)

    @router.get("/ready", responses={503: {"description": "not ready (problem+json with the failed checks)"}})
    async def ready(request: Request) -> Readiness:
        """Readiness: started, the database answers `SELECT 1` and the bus answers."""
        context: ServiceContext | None = getattr(request.app.state, "context", None)
        if context is None:
            raise Problem(503, "the service is starting", checks={"lifespan": "not started"})
        checks = await readiness_checks(context)
        if any(result != "ok" for result in checks.values()):
            raise Problem(503, "a dependency is not ready", checks=checks)
        return Readiness(status="ready", service=service, checks=checks)

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        context: ServiceContext | None = getattr(request.app.state, "context", None)
        if context is not None:
            await _refresh_lag(context)
        return metrics_response()

    return router


async def readiness_checks(context: ServiceContext) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        await ping(context.engine, timeout_s=CHECK_TIMEOUT_S)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await context.bus.lag()
        checks["bus"] = "ok"
    except Exception as exc:
        checks["bus"] = f"failed: {type(exc).__name__}"
    return checks


async def _refresh_lag(context: ServiceContext) -> None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            lags = await context.bus.lag()
    except Exception:
        return  # metrics must answer even when the bus does not
    for group, lag in lags.items():
        group_lag_gauge().labels(group=group).set(lag)


class DeadLetterView(BaseModel):
    id: int
    consumer: str
    event_id: str
    topic: str
    tenant: str | None
    error: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None
    envelope: dict[str, Any]


class ReplayResult(BaseModel):
    id: int
    applied: bool


CityAdmin = Annotated[Principal, Depends(require_roles(Role.CITY_ADMIN))]
# Row ids are 64-bit integers in every database: a larger number names nothing (and overflows the driver).
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def dead_letters_router() -> APIRouter:
    router = APIRouter(prefix="/v1/dead-letters", tags=["operations"])

    @router.get("")
    async def list_(
        principal: CityAdmin, context: Context, include_replayed: bool = False, limit: int = 100
    ) -> list[DeadLetterView]:
        """Events this service's consumer gave up on, for the caller's municipality."""
        found = await list_dead_letters(
            context.sessionmaker,
            consumer=context.consumer.name,
            include_replayed=include_replayed,
            limit=min(max(limit, 1), 1_000),
        )
        views = [DeadLetterView(**vars(letter), tenant=tenant_of(letter.envelope)) for letter in found]
        return [view for view in views if view.tenant in (None, principal.tenant)]

    @router.post("/{dead_letter_id}/replay")
    async def replay_(dead_letter_id: DeadLetterId, principal: CityAdmin, context: Context) -> ReplayResult:
        """Apply a dead letter again through the consumer (once the cause is fixed); idempotent."""
        await _ensure_visible(context, dead_letter_id, principal)
        try:
            applied = await replay(context.consumer, dead_letter_id)
        except LookupError:
            raise Problem(404, "no such dead letter") from None
        except ReplayFailed as exc:
            raise Problem(409, f"the event failed again: {exc}") from None
        return ReplayResult(id=dead_letter_id, applied=applied)

    return router


def tenant_of(envelope: dict[str, Any]) -> str | None:
    # A decodable envelope carries its tenant; a raw record the bus could not read may have it in its headers.
    tenant = envelope.get("tenant") or envelope.get("headers", {}).get("ce_tenant")
    return tenant if isinstance(tenant, str) else None


async def _ensure_visible(context: ServiceContext, dead_letter_id: int, principal: Principal) -> None:
    stmt = select(dead_letters.c.envelope).where(
        dead_letters.c.id == dead_letter_id, dead_letters.c.consumer == context.consumer.name
    )
    async with context.sessionmaker() as session:
        envelope = (await session.execute(stmt)).scalar_one_or_none()
    if envelope is None or tenant_of(envelope) not in (None, principal.tenant):
        raise Problem(404, "no such dead letter")
