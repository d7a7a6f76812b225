"""The embedded platform serves logistics under /logistics, seeded with the demo day."""

from __future__ import annotations

from pathlib import Path

import httpx

from cityblocks.embedded import build_platform
from cityblocks.services import SERVICES
from logistics.app import SPEC


async def test_the_embedded_platform_mounts_logistics_with_its_demo_day(tmp_path: Path) -> None:
    assert "logistics" in [entry.name for entry in SERVICES]
    platform = build_platform(tmp_path, specs=[SPEC])
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            ready = await client.get("/logistics/ready")
            token = (await client.post("/auth/token", data={"username": "hasselt.operator"})).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            orders = (await client.get("/logistics/v1/orders", headers=headers)).json()
            zones = (await client.get("/logistics/v1/zones", headers=headers)).json()

    assert ready.status_code == 200
    assert len(orders) >= 100
    codes = {z["properties"]["code"] for z in zones["features"]}
    assert codes >= {"binnen-groene-boulevard", "voetgangerszone"}
