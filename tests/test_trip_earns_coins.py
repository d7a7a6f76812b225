"""Across services: a trip paid with mobility credit earns coins in incentives once, also when redelivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from cityblocks.embedded import MountedService, build_platform
from contracts import incentives as incentive_events
from contracts import mobility_credit as mobility_events
from contracts.envelope import Envelope
from eventbus.tables import outbox
from incentives.app import SPEC as INCENTIVES
from mobility_credit.app import SPEC as MOBILITY_CREDIT
from servicekit.service import ServiceContext


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = build_platform(tmp_path, specs=[MOBILITY_CREDIT, INCENTIVES])
    async with app.router.lifespan_context(app):
        yield app
        await asyncio.sleep(0.1)  # let relays finish a woken cycle before they are stopped


@pytest.fixture
async def client(platform: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=platform), base_url="http://platform"
    ) as client:
        yield client


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/auth/token", data={"username": username})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def context(platform: FastAPI, name: str) -> ServiceContext:
    services: list[MountedService] = platform.state.services
    found: ServiceContext = next(s for s in services if s.name == name).app.state.context
    return found


async def pay_bus_trip(client: httpx.AsyncClient, key: str, consumed_at: datetime) -> None:
    headers = await login(client, "geel.provider")
    providers = (await client.get("/mobility-credit/v1/providers", headers=headers)).json()
    bus = next(p for p in providers if "bus" in p["modes"])
    users = (await client.get("/auth/users")).json()
    trip = {
        "citizen_id": next(u["subject"] for u in users if u["username"] == "geel.citizen"),
        "mode": "bus",
        "place": {"name": "Geel Station"},
        "consumed_at": consumed_at.isoformat(),
        "total_cents": 300,
    }
    paid = await client.post(
        f"/mobility-credit/v1/providers/{bus['id']}/trips",
        json=trip,
        headers={**headers, "Idempotency-Key": key},
    )
    assert paid.status_code in (200, 201), paid.text


async def kempen_coins(client: httpx.AsyncClient) -> int:
    wallet = (await client.get("/incentives/v1/wallet", headers=await login(client, "geel.citizen"))).json()
    return sum(w["balance"] for w in wallet if w["coin_code"] == "KEMPEN")


async def eventually_coins(client: httpx.AsyncClient, expected: int) -> int:
    async with asyncio.timeout(10):
        while True:
            found = await kempen_coins(client)
            if found == expected:
                return found
            await asyncio.sleep(0.05)


async def issued_events(platform: FastAPI) -> list[dict[str, Any]]:
    async with context(platform, "incentives").sessionmaker() as session:
        query = sa.select(outbox.c.data).where(outbox.c.type == incentive_events.CoinsIssued.event_type)
        return [dict(row) for row in (await session.execute(query)).scalars()]


async def trip_paid_envelopes(platform: FastAPI) -> list[Envelope]:
    async with context(platform, "mobility-credit").sessionmaker() as session:
        query = sa.select(outbox.c.topic, outbox.c.attributes, outbox.c.data).where(
            outbox.c.type == mobility_events.TripPaid.event_type
        )
        rows = (await session.execute(query)).all()
    return [Envelope.from_attributes(attributes, topic=topic, data=data) for topic, attributes, data in rows]


async def test_a_bus_trip_paid_with_mobility_credit_earns_coins_once(
    platform: FastAPI, client: httpx.AsyncClient
) -> None:
    key, consumed_at = str(uuid4()), datetime.now(UTC)
    await pay_bus_trip(client, key, consumed_at)
    await pay_bus_trip(client, key, consumed_at)  # the provider's retry with the same idempotency key

    assert await eventually_coins(client, 5) == 5
    [paid] = await trip_paid_envelopes(platform)
    await platform.state.bus.publish([paid])  # the bus delivers the same event a second time
    await asyncio.sleep(0.3)

    assert await kempen_coins(client) == 5
    [issued] = await issued_events(platform)
    assert issued["trigger_event_id"] == paid.id
    assert issued["amount"] == 5


async def test_the_embedded_platform_mounts_incentives(client: httpx.AsyncClient) -> None:
    assert (await client.get("/incentives/ready")).status_code == 200
    schema = (await client.get("/incentives/openapi.json")).json()
    assert "/v1/wallet/qr" in schema["paths"]


async def test_the_coins_are_redeemed_at_a_geel_shop_and_the_shop_is_settled_in_euro(
    platform: FastAPI, client: httpx.AsyncClient
) -> None:
    await pay_bus_trip(client, str(uuid4()), datetime.now(UTC))
    await eventually_coins(client, 5)
    citizen, merchant = await login(client, "geel.citizen"), await login(client, "geel.merchant")
    kempen = next(w for w in (await client.get("/incentives/v1/wallet", headers=citizen)).json())
    qr = await client.post(
        "/incentives/v1/wallet/qr", json={"coin_type_id": kempen["coin_type_id"]}, headers=citizen
    )
    shops = (await client.get("/incentives/v1/merchants", headers=merchant)).json()
    body = {"qr": qr.json()["payload"], "merchant_id": shops[0]["id"], "amount": 4}
    assert (await client.post("/incentives/v1/redemptions", json=body, headers=merchant)).status_code == 201

    admin = await login(client, "geel.city_admin")
    period = {"period_start": "2026-01-01", "period_end": datetime.now(UTC).date().isoformat()}
    settled = await client.post("/incentives/v1/settlements", json=period, headers=admin)
    assert settled.status_code == 201, settled.text
    statements = (await client.get("/incentives/v1/merchant/statements", headers=merchant)).json()
    assert [(s["coin_code"], s["coins"], s["amount_cents"]) for s in statements] == [("KEMPEN", 4, 40)]
