"""The embedded platform lists incentives among its services and serves it under /incentives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from cityblocks.embedded import build_platform
from cityblocks.services import SERVICES
from incentives.app import SPEC
from incentives.testing import running_service, settings_for, trip


def test_the_runner_lists_incentives() -> None:
    [entry] = [e for e in SERVICES if e.name == "incentives"]
    assert (entry.module, entry.env_prefix, entry.port) == ("incentives.app", "INCENTIVES_", 8104)


async def test_the_platform_serves_incentives_under_its_name(tmp_path: Path) -> None:
    platform = build_platform(tmp_path, specs=[SPEC])
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            token = (await client.post("/auth/token", data={"username": "geel.citizen"})).json()[
                "access_token"
            ]
            ready = await client.get("/incentives/ready")
            coins = await client.get(
                "/incentives/v1/coin-types", headers={"Authorization": f"Bearer {token}"}
            )
        await asyncio.sleep(0.1)
    assert ready.status_code == 200
    assert {c["code"] for c in coins.json()} == {"KEMPEN", "GEEL"}


async def test_the_service_starts_from_its_migrations(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, create_tables=False, migrate_on_start=True)
    async with running_service(settings) as service:
        await service.deliver(trip())
        wallet = await service.call("GET", "/v1/wallet", "geel.citizen")
    assert [(w["coin_code"], w["balance"]) for w in wallet] == [("KEMPEN", 5)]
