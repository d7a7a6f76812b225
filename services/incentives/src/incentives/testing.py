"""Helpers for tests and benchmarks of the incentives service: a running service, demo users, events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from fastapi import FastAPI

from contracts import logistics, mobility_credit
from contracts.base import Event
from contracts.envelope import Envelope
from incentives.settings import Settings
from servicekit.devidp import DevIdentityProvider, demo_user, demo_user_id
from servicekit.service import ServiceContext

GEEL = "13008"
HASSELT = "71022"


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    idp: DevIdentityProvider
    settings: Settings

    @property
    def context(self) -> ServiceContext:
        context: ServiceContext = self.app.state.context
        return context

    def headers(self, username: str, **overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.idp.issue(demo_user(username), **overrides)}"}

    async def call(self, method: str, path: str, username: str, body: Any = None, status: int = 200) -> Any:
        response = await self.client.request(method, path, json=body, headers=self.headers(username))
        assert response.status_code == status, response.text
        return (
            response.json() if response.content and "json" in response.headers["content-type"] else response
        )

    async def deliver(
        self, event: Event, *, tenant: str = GEEL, event_id: str | None = None, time: datetime | None = None
    ) -> Envelope:
        """Hand an event to the service's consumer as the bus would (inbox, handler, one transaction)."""
        envelope = Envelope.wrap(event, source="/cityblocks/test", tenant=tenant, event_id=event_id)
        if time is not None:
            envelope = envelope.model_copy(update={"time": time})
        await self.context.consumer.deliver(envelope)
        return envelope


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "demo_data": True,
        "log_json": False,
        "qr_secret": "test-secret",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Service]:
    """The service app with its lifespan entered and an httpx client on it."""
    from incentives.app import create_app  # the app module wires everything; helpers stay importable alone

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://incentives") as client:
            yield Service(app, client, DevIdentityProvider.from_settings(settings), settings)
            # Let the outbox relay finish a cycle woken by the last commit: on Python 3.11 cancelling its
            # `wait_for` in the same loop turn as the wake-up loses the cancellation and stop() never returns.
            await asyncio.sleep(0.1)


def trip(citizen: str = "geel.citizen", mode: str = "bus", **fields: Any) -> mobility_credit.TripPaid:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "trip_id": uuid4(),
        "citizen_id": demo_user_id(citizen),
        "provider_id": uuid4(),
        "provider_name": "De Lijn",
        "scheme_id": uuid4(),
        "mode": mode,
        "place": {"name": "Geel Station"},
        "consumed_at": now,
        "total_cents": 300,
        "city_share_cents": 300,
        "citizen_share_cents": 0,
        "paid_at": now,
    }
    values.update(fields)
    return mobility_credit.TripPaid(**values)


def stop_delivered(shop_id: str, vehicle_kind: str = "cargo_bike") -> logistics.StopCompleted:
    return logistics.StopCompleted(
        order_id=uuid4(),
        route_id=uuid4(),
        vehicle_id=uuid4(),
        vehicle_kind=vehicle_kind,
        stop_kind="delivery",
        shipper_id="shipper-1",
        recipient={"kind": "shop", "name": "Fietsen Van Geel", "shop_id": shop_id},
        weight_kg=12.5,
        distance_m=4_000,
        completed_at=datetime.now(UTC),
    )
