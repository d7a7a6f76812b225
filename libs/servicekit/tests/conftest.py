"""A tiny probe service on servicekit: a route emits ProbeRecorded, a subscription records it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import UnitOfWork
from servicekit.app import create_service_app
from servicekit.auth import CurrentPrincipal, Principal, ensure_tenant, require_roles
from servicekit.devidp import KEY_FILE, DevIdentityProvider, demo_user, load_or_create_key
from servicekit.service import ServiceContext, ServiceSpec, UowFactory
from servicekit.settings import ServiceSettings

metadata = MetaData()
seen = Table(
    "probe_seen",
    metadata,
    Column("stream", String(200), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("tenant", String(10), nullable=False),
    Column("traceparent", String(64)),
)


class StreamClosed(Exception):
    """The stream takes no more records."""


class RecordIn(BaseModel):
    stream: str = Field(min_length=1)
    seq: int = Field(ge=0)


async def on_probe_recorded(uow: UnitOfWork, event: ProbeRecorded, envelope: Envelope) -> None:
    if event.payload == "poison":
        raise ValueError("this record cannot be applied")
    row = {
        "stream": event.stream,
        "seq": event.seq,
        "tenant": envelope.tenant,
        "traceparent": envelope.traceparent,
    }
    await uow.session.execute(insert(seen).values(row))


def probe_router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/records", status_code=202)
    async def record(
        body: RecordIn,
        principal: Annotated[Principal, Depends(require_roles("city_admin", "market_master"))],
        uow_factory: UowFactory,
    ) -> dict[str, str]:
        if body.stream == "closed":
            raise StreamClosed(f"stream {body.stream} is closed")
        async with uow_factory() as uow:
            envelope = uow.emit(ProbeRecorded(stream=body.stream, seq=body.seq), tenant=principal.tenant)
        return {"event_id": envelope.id}

    @router.post("/poison", status_code=202)
    async def poison(principal: CurrentPrincipal, uow_factory: UowFactory) -> dict[str, str]:
        async with uow_factory() as uow:
            envelope = uow.emit(ProbeRecorded(stream="p", seq=0, payload="poison"), tenant=principal.tenant)
        return {"event_id": envelope.id}

    @router.get("/seen")
    async def list_seen(principal: CurrentPrincipal, uow_factory: UowFactory) -> list[dict[str, object]]:
        async with uow_factory() as uow:
            rows = (await uow.session.execute(select(seen).where(seen.c.tenant == principal.tenant))).all()
        return [dict(row._mapping) for row in rows]

    @router.get("/tenants/{tenant}/thing")
    async def thing(tenant: str, principal: CurrentPrincipal) -> dict[str, str]:
        ensure_tenant(principal, tenant)
        return {"tenant": tenant}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return router


async def seed_marker(context: ServiceContext) -> None:
    context.settings.data_dir.joinpath("seeded").write_text("yes")


@pytest.fixture
def probe_spec() -> ServiceSpec:
    return ServiceSpec(
        name="probe",
        title="Probe service",
        metadata=metadata,
        routers=[probe_router()],
        subscriptions={ProbeRecorded: on_probe_recorded},
        error_statuses={StreamClosed: 409},
        startup=[seed_marker],
    )


@pytest.fixture(scope="session")
def signing_key_pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # RSA key generation is the slowest part of a test's setup; one key serves the whole session.
    key_dir = tmp_path_factory.mktemp("devidp")
    load_or_create_key(key_dir)
    return (key_dir / KEY_FILE).read_bytes()


@pytest.fixture
def settings(tmp_path: Path, signing_key_pem: bytes) -> ServiceSettings:
    settings = ServiceSettings(
        service_name="probe", data_dir=tmp_path, consumer_max_attempts=2, consumer_backoff_s=0.01
    )
    settings.devidp_dir.mkdir(parents=True)
    (settings.devidp_dir / KEY_FILE).write_bytes(signing_key_pem)
    return settings


@pytest.fixture
def idp(settings: ServiceSettings) -> DevIdentityProvider:
    return DevIdentityProvider.from_settings(settings)


@pytest.fixture
def token(idp: DevIdentityProvider) -> str:
    return idp.issue(demo_user("hasselt.city_admin"))


@pytest.fixture
def app(probe_spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    return create_service_app(probe_spec, settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # ASGITransport sends no lifespan events; entering the lifespan ourselves is what a server does.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            yield client
