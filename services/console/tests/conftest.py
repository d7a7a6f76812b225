"""Fixtures: an embedded platform with the console and two small probe services, and logged-in clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData

from cityblocks.embedded import build_platform
from console.app import SPEC as CONSOLE
from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import UnitOfWork
from servicekit.auth import CurrentPrincipal
from servicekit.service import ServiceSpec, UowFactory
from servicekit.settings import ServiceSettings


class QuickToGiveUp(ServiceSettings):
    consumer_max_attempts: int = 1
    consumer_backoff_s: float = 0.01


def producer_spec() -> ServiceSpec:
    """Emits ProbeRecorded for the caller's municipality."""
    router = APIRouter()

    @router.post("/v1/records/{stream}/{seq}", status_code=202)
    async def record(stream: str, seq: int, principal: CurrentPrincipal, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            uow.emit(ProbeRecorded(stream=stream, seq=seq), tenant=principal.tenant, subject=stream)

    return ServiceSpec(name="producer", title="Producer", metadata=MetaData(), routers=[router])


def fragile_spec(state: dict[str, bool]) -> ServiceSpec:
    """A consumer that fails while `state["broken"]` is set, so that its events become dead letters."""

    async def on_probe_recorded(uow: UnitOfWork, event: ProbeRecorded, envelope: Envelope) -> None:
        if state["broken"] and event.stream == "poison":
            raise RuntimeError("cannot handle poison")

    return ServiceSpec(
        name="fragile",
        title="Fragile consumer",
        metadata=MetaData(),
        subscriptions={ProbeRecorded: on_probe_recorded},
        settings_type=QuickToGiveUp,
    )


@pytest.fixture
def fragile_state() -> dict[str, bool]:
    return {"broken": True}


@pytest.fixture
def platform(tmp_path: Path, fragile_state: dict[str, bool]) -> FastAPI:
    app = build_platform(tmp_path, specs=[CONSOLE, producer_spec(), fragile_spec(fragile_state)])
    for service in app.state.services:
        if service.name == "console":
            # The console calls the services over HTTP; here the platform answers in process.
            service.app.state.service_transport = httpx.ASGITransport(app=app)
    return app


@pytest.fixture
async def client(platform: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield client


LogIn = Callable[[str], Awaitable[httpx.Response]]
Bearer = Callable[[str], Awaitable[dict[str, str]]]


@pytest.fixture
def log_in(client: httpx.AsyncClient) -> LogIn:
    """Log the client's cookie session in as a demo user."""

    async def go(username: str) -> httpx.Response:
        response = await client.post("/console/login", data={"username": username})
        assert response.status_code == 303, response.text
        return response

    return go


@pytest.fixture
def bearer(client: httpx.AsyncClient) -> Bearer:
    """Authorization headers of a demo user, for calling services directly."""

    async def go(username: str) -> dict[str, str]:
        response = await client.post("/auth/token", data={"username": username})
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return go
