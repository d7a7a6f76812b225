"""The token lifecycle invariant: issued = held by citizens + held by merchants + settled + expired."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import mobility_credit
from incentives import demo
from incentives.testing import Service, running_service, settings_for, trip

CITIZENS = ["geel.citizen", "hasselt.citizen"]
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("trip"), st.sampled_from(CITIZENS), st.sampled_from(["bus", "train", "taxi"])),
        st.tuples(st.just("redeem"), st.sampled_from(CITIZENS), st.integers(1, 12)),
        st.tuples(st.just("refund"), st.integers(1, 6)),
        st.tuples(st.just("pass_on"), st.integers(1, 10)),
        st.tuples(st.just("settle")),
        st.tuples(st.just("expire")),
    ),
    max_size=14,
)


async def expiring_coin(service: Service) -> str:
    """A coin type that has expired already, with a campaign rewarding every trip and a shop taking it."""
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    coin = await service.call(
        "POST",
        "/v1/coin-types",
        "geel.city_admin",
        {"code": "OLD", "name": "Old coin", "expires_at": past},
        status=201,
    )
    rule = {
        "trigger": mobility_credit.TripPaid.event_type,
        "beneficiary_field": "citizen_id",
        "reward_coins": 3,
    }
    campaign = {
        "name": "Old",
        "sponsor": "Stad Geel",
        "coin_type_id": coin["id"],
        "budget_coins": 40,
        "valid_from": "2026-01-01T00:00:00Z",
        "audience_tenants": ["13008", "71022"],
        "rules": [rule],
    }
    await service.call("POST", "/v1/campaigns", "geel.city_admin", campaign, status=201)
    return str(coin["id"])


class Scenario:
    def __init__(self, service: Service, old_coin: str) -> None:
        self.service = service
        self.old_coin = old_coin
        self.redemptions: list[str] = []
        self.periods = 0

    async def run(self, operation: tuple[Any, ...]) -> None:
        kind, *args = operation
        await getattr(self, kind)(*args)

    async def trip(self, citizen: str, mode: str) -> None:
        tenant = "71022" if citizen.startswith("hasselt") else "13008"
        await self.service.deliver(trip(citizen, mode=mode), tenant=tenant)

    async def redeem(self, citizen: str, amount: int) -> None:
        for coin in (str(demo.KEMPEN_COIN), self.old_coin):
            response = await self.service.client.post(
                "/v1/wallet/qr", json={"coin_type_id": coin}, headers=self.service.headers(citizen)
            )
            if response.status_code != 200:
                continue
            body = {"qr": response.json()["payload"], "merchant_id": str(demo.BAKERY), "amount": amount}
            redeemed = await self.service.client.post(
                "/v1/redemptions", json=body, headers=self.service.headers("geel.merchant")
            )
            assert redeemed.status_code in (201, 409), redeemed.text
            if redeemed.status_code == 201:
                self.redemptions.append(redeemed.json()["redemption_id"])

    async def refund(self, amount: int) -> None:
        if self.redemptions:
            path = f"/v1/redemptions/{self.redemptions[-1]}/refunds"
            response = await self.service.client.post(
                path, json={"amount": amount}, headers=self.service.headers("geel.merchant")
            )
            assert response.status_code in (200, 409), response.text

    async def pass_on(self, amount: int) -> None:
        body = {
            "to_merchant_id": str(demo.BIKE_SHOP),
            "coin_type_id": str(demo.KEMPEN_COIN),
            "amount": amount,
        }
        path = f"/v1/merchants/{demo.BAKERY}/transfers"
        response = await self.service.client.post(
            path, json=body, headers=self.service.headers("geel.merchant")
        )
        assert response.status_code in (200, 409), response.text

    async def settle(self) -> None:
        self.periods += 1
        day = (datetime(2030, 1, 1) + timedelta(days=self.periods)).date().isoformat()
        body = {"period_start": "2026-01-01", "period_end": day}
        await self.service.call("POST", "/v1/settlements", "geel.city_admin", body, status=201)

    async def expire(self) -> None:
        await self.service.call("POST", f"/v1/coin-types/{self.old_coin}/expiry-notices", "geel.city_admin")
        await self.service.call("POST", f"/v1/coin-types/{self.old_coin}/expiry", "geel.city_admin")

    async def check(self) -> None:
        for coin in (str(demo.KEMPEN_COIN), self.old_coin):
            totals = await self.service.call("GET", f"/v1/coin-types/{coin}/lifecycle", "geel.city_admin")
            held = totals["citizens"] + totals["merchants"] + totals["settled"] + totals["expired"]
            assert totals["issued"] == held
            assert min(totals.values()) >= 0


async def play(operations: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_service(settings_for(Path(tmp), velocity_window_s=1)) as service:
            scenario = Scenario(service, await expiring_coin(service))
            for operation in operations:
                await scenario.run(operation)
                await scenario.check()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_every_issued_coin_is_held_settled_or_expired(operations: list[tuple[Any, ...]]) -> None:
    asyncio.run(play(operations))


def test_expiry_notices_first_then_moves_what_is_left_to_breakage(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(settings_for(tmp_path)) as service:
            old = await expiring_coin(service)
            await service.deliver(trip())
            await service.call("POST", f"/v1/coin-types/{old}/expiry", "geel.city_admin", status=200)
            assert (await service.call("GET", f"/v1/coin-types/{old}/lifecycle", "geel.city_admin"))[
                "expired"
            ] == 0
            notice = await service.call("POST", f"/v1/coin-types/{old}/expiry-notices", "geel.city_admin")
            assert notice == {"wallets": 1, "coins": 3}
            expired = await service.call("POST", f"/v1/coin-types/{old}/expiry", "geel.city_admin")
            assert expired == {"wallets": 1, "coins": 3}
            totals = await service.call("GET", f"/v1/coin-types/{old}/lifecycle", "geel.city_admin")
            assert (totals["issued"], totals["citizens"], totals["expired"]) == (3, 0, 3)

    asyncio.run(scenario())
