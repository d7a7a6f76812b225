"""The embedded platform mounts the service at /mobility-credit with its demo data: the done-when journey."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx

from cityblocks.embedded import build_platform
from cityblocks.services import SERVICES
from mobility_credit.app import SPEC
from mobility_credit.domain import LOCAL_TIME
from mobility_credit.testing import BLUE_BIKE, DE_LIJN, new_key, trip


def test_the_service_is_catalogued_for_the_runners() -> None:
    entry = next(e for e in SERVICES if e.name == "mobility-credit")

    assert (entry.module, entry.env_prefix, entry.port) == ("mobility_credit.app", "MOBILITY_CREDIT_", 8103)


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/auth/token", data={"username": username})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_a_hasselt_citizen_pays_bus_and_bike_on_the_embedded_platform(tmp_path: Path) -> None:
    platform = build_platform(tmp_path, specs=[SPEC])
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            provider = await login(client, "hasselt.provider")
            citizen = await login(client, "hasselt.citizen")
            admin = await login(client, "hasselt.city_admin")
            base = "/mobility-credit/v1"
            for provider_id, mode in ((DE_LIJN, "bus"), (BLUE_BIKE, "shared_bike")):
                paid = await client.post(
                    f"{base}/providers/{provider_id}/trips",
                    json=trip(mode=mode, total=300),
                    headers={**provider, "Idempotency-Key": new_key()},
                )
                assert paid.status_code == 201, paid.text
            history = (await client.get(f"{base}/me/history", headers=citizen)).json()
            today = datetime.now(LOCAL_TIME).date().isoformat()
            run = await client.post(
                f"{base}/settlement-runs",
                json={"period_start": "2026-01-01", "period_end": today},
                headers=admin,
            )
            statements = (
                await client.get(f"{base}/providers/{DE_LIJN}/settlements", headers=provider)
            ).json()
            ready = await client.get("/mobility-credit/ready")

    assert ready.status_code == 200
    assert sorted(i["trip"]["mode"] for i in history if i["kind"] == "trip") == ["bus", "shared_bike"]
    assert run.status_code == 201
    assert statements[0]["per_mode"] == [{"mode": "bus", "trips": 1, "amount_cents": 300}]
