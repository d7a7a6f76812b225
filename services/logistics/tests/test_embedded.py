"""The embedded platform serves logistics under /logistics: the demo day is planned, a driver delivers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityblocks.embedded import build_platform
from cityblocks.services import SERVICES
from logistics.app import SPEC


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    token = (await client.post("/auth/token", data={"username": username})).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def finished(client: httpx.AsyncClient, run_id: str, headers: dict[str, str]) -> Any:
    async with asyncio.timeout(60):
        while True:
            run = (await client.get(f"/logistics/v1/planning-runs/{run_id}", headers=headers)).json()
            if run["status"] in ("completed", "failed"):
                return run
            await asyncio.sleep(0.1)


async def test_the_platform_mounts_logistics_seeded_with_the_hasselt_day(tmp_path: Path) -> None:
    platform = build_platform(tmp_path, specs=[SPEC])
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            ready = await client.get("/logistics/ready")
            operator = await login(client, "hasselt.operator")
            orders = (await client.get("/logistics/v1/orders", headers=operator)).json()
            zones = (await client.get("/logistics/v1/zones", headers=operator)).json()

    assert "logistics" in [entry.name for entry in SERVICES]
    assert ready.status_code == 200
    assert len(orders) >= 150
    assert {z["properties"]["code"] for z in zones["features"]} >= {
        "binnen-groene-boulevard",
        "voetgangerszone",
    }


@pytest.mark.slow
async def test_the_operator_plans_the_demo_day_and_a_driver_completes_a_stop(tmp_path: Path) -> None:
    platform = build_platform(tmp_path, specs=[SPEC])
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform", timeout=60) as client:
            operator = await login(client, "hasselt.operator")
            orders = (await client.get("/logistics/v1/orders", headers=operator)).json()
            body = {"delivery_date": orders[0]["delivery_date"], "time_limit_s": 1}
            started = (await client.post("/logistics/v1/planning-runs", headers=operator, json=body)).json()
            run = await finished(client, started["id"], operator)
            dispatch = f"/logistics/v1/planning-runs/{run['id']}/dispatch"
            assert (await client.post(dispatch, headers=operator, json={})).status_code == 200
            driver = await login(client, "hasselt.driver")
            route = (await client.get("/logistics/v1/driver/routes", headers=driver)).json()[0]
            done = f"/logistics/v1/routes/{route['id']}/stops/0/done"
            assert (await client.post(done, headers=driver, json={})).status_code == 200
            routes = (
                await client.get(f"/logistics/v1/planning-runs/{run['id']}/routes", headers=operator)
            ).json()

    assert run["status"] == "completed" and run["summary"]["violations"] == []
    assert run["summary"]["orders_planned"] >= 150
    shown = next(r for r in routes if r["id"] == route["id"])
    assert shown["stops"][0]["status"] == "done"
