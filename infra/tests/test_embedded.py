"""The embedded platform: services mounted on one shared bus, the dev identity provider, the home page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from cityblocks.embedded import build_platform
from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import UnitOfWork
from servicekit.auth import CurrentPrincipal
from servicekit.service import ServiceSpec, UowFactory

beta_metadata = MetaData()
beta_seen = Table(
    "seen",
    beta_metadata,
    Column("stream", String(50), primary_key=True),
    Column("seq", Integer, primary_key=True),
)


def alpha_spec() -> ServiceSpec:
    """A producer: its route emits ProbeRecorded."""
    router = APIRouter()

    @router.post("/v1/records/{stream}/{seq}", status_code=202)
    async def record(stream: str, seq: int, principal: CurrentPrincipal, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            uow.emit(ProbeRecorded(stream=stream, seq=seq), tenant=principal.tenant)

    return ServiceSpec(name="alpha", title="Alpha producer", metadata=MetaData(), routers=[router])


def beta_spec() -> ServiceSpec:
    """A consumer in another database: it records what alpha emitted."""

    async def on_probe_recorded(uow: UnitOfWork, event: ProbeRecorded, envelope: Envelope) -> None:
        await uow.session.execute(insert(beta_seen).values(stream=event.stream, seq=event.seq))

    router = APIRouter()

    @router.get("/v1/seen")
    async def seen(uow_factory: UowFactory) -> list[list[Any]]:
        async with uow_factory() as uow:
            return [list(row) for row in (await uow.session.execute(select(beta_seen))).all()]

    return ServiceSpec(
        name="beta",
        title="Beta consumer",
        metadata=beta_metadata,
        routers=[router],
        subscriptions={ProbeRecorded: on_probe_recorded},
    )


@pytest.fixture
def platform(tmp_path: Path) -> FastAPI:
    return build_platform(tmp_path, specs=[alpha_spec(), beta_spec()])


@pytest.fixture
async def client(platform: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield client


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/auth/token", data={"username": username})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_the_home_page_lists_each_service_with_docs_and_live_health(client: httpx.AsyncClient) -> None:
    page = await client.get("/")

    assert page.status_code == 200
    assert 'href="alpha/docs"' in page.text
    assert 'href="beta/docs"' in page.text
    assert page.text.count('class="status ready"') == 2
    assert 'href="auth/"' in page.text


async def test_the_services_endpoint_reports_readiness(client: httpx.AsyncClient) -> None:
    statuses = (await client.get("/services")).json()

    assert [(s["name"], s["ready"]) for s in statuses] == [("alpha", True), ("beta", True)]


async def test_every_mounted_service_runs_its_lifespan(client: httpx.AsyncClient, tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        ready = await client.get(f"/{name}/ready")
        assert ready.status_code == 200, ready.text
        assert (tmp_path / f"{name}.db").exists()


async def test_a_token_from_auth_is_accepted_by_a_mounted_service(client: httpx.AsyncClient) -> None:
    headers = await login(client, "hasselt.market_master")

    response = await client.post("/alpha/v1/records/s/1", headers=headers)

    assert response.status_code == 202


async def test_an_event_from_one_service_reaches_another_over_the_shared_bus(
    client: httpx.AsyncClient,
) -> None:
    headers = await login(client, "geel.city_admin")

    await client.post("/alpha/v1/records/s/1", headers=headers)
    await client.post("/alpha/v1/records/s/2", headers=headers)

    assert await eventually(client, "/beta/v1/seen", [["s", 1], ["s", 2]]) == [["s", 1], ["s", 2]]


async def eventually(client: httpx.AsyncClient, path: str, expected: Any) -> Any:
    async with asyncio.timeout(5):
        while True:
            found = (await client.get(path)).json()
            if found == expected:
                return found
            await asyncio.sleep(0.02)


async def test_mounted_docs_point_at_the_mounted_openapi(client: httpx.AsyncClient) -> None:
    docs = await client.get("/alpha/docs")
    schema = await client.get("/alpha/openapi.json")

    assert "/alpha/openapi.json" in docs.text
    assert "/v1/records/{stream}/{seq}" in schema.json()["paths"]


async def test_the_platform_runs_with_no_services(tmp_path: Path) -> None:
    platform = build_platform(tmp_path, specs=[])
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            page = await client.get("/")
            jwks = await client.get("/auth/.well-known/jwks.json")

    assert "No services are mounted yet" in page.text
    assert jwks.json()["keys"][0]["alg"] == "RS256"


def test_the_default_platform_mounts_the_catalogued_services(tmp_path: Path) -> None:
    from cityblocks.services import SERVICES

    platform = build_platform(tmp_path)

    assert [service.name for service in platform.state.services] == [entry.name for entry in SERVICES]
