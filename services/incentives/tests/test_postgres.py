"""PostgreSQL tier: concurrent transactions on limits, budgets and one-time QR codes; the ledger verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contracts import mobility_credit
from incentives import demo
from incentives.testing import Service, running_service, settings_for, trip
from ledger import Ledger

pytestmark = pytest.mark.postgres


async def coins(service: Service, username: str, code: str) -> int:
    wallet = await service.call("GET", "/v1/wallet", username)
    return sum(w["balance"] for w in wallet if w["coin_code"] == code)


async def test_limits_budgets_and_one_time_codes_hold_under_concurrency(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = settings_for(tmp_path, database_url=postgres_url, create_tables=False, migrate_on_start=True)
    async with running_service(settings) as service:
        rule = {
            "trigger": mobility_credit.TripPaid.event_type,
            "beneficiary_field": "citizen_id",
            "reward_coins": 5,
        }
        campaign = {
            "name": "Small",
            "sponsor": "Stad Geel",
            "coin_type_id": str(demo.GEEL_COIN),
            "budget_coins": 33,
            "valid_from": "2026-01-01T00:00:00Z",
            "rules": [rule],
        }
        await service.call("POST", "/v1/campaigns", "geel.city_admin", campaign, status=201)
        await asyncio.gather(*(service.deliver(trip(mode="train" if i % 2 else "bus")) for i in range(16)))

        assert await coins(service, "geel.citizen", "KEMPEN") == 20  # 8 bus trips, weekly limit 20
        assert await coins(service, "geel.citizen", "GEEL") == 33  # 16 rewards of 5 from a budget of 33

        qr = await service.call(
            "POST", "/v1/wallet/qr", "geel.citizen", {"coin_type_id": str(demo.KEMPEN_COIN)}
        )
        body = {"qr": qr["payload"], "merchant_id": str(demo.BAKERY), "amount": 4}
        headers = service.headers("geel.merchant")
        answers = await asyncio.gather(
            *(service.client.post("/v1/redemptions", json=body, headers=headers) for _ in range(5))
        )
        assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409]

        for code in (demo.KEMPEN_COIN, demo.GEEL_COIN):
            totals = await service.call("GET", f"/v1/coin-types/{code}/lifecycle", "geel.city_admin")
            assert (
                totals["issued"]
                == totals["citizens"] + totals["merchants"] + totals["settled"] + totals["expired"]
            )

    ledger = Ledger.from_url(postgres_url)
    try:
        report = await ledger.verify()
    finally:
        await ledger.close()
    assert report.ok, report
