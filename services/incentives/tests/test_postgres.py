"""PostgreSQL tier: concurrent transactions on limits, budgets and one-time QR codes; the ledger verifies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from contracts import mobility_credit
from incentives import demo, domain, redemption
from incentives.testing import GEEL, Service, running_service, settings_for, trip
from ledger import Ledger
from servicekit.auth import Principal
from servicekit.devidp import demo_user_id

pytestmark = pytest.mark.postgres
LIMITS = domain.VelocityLimits()


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


async def test_one_qr_code_in_two_concurrent_redemption_batches_is_redeemed_once(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = settings_for(tmp_path, database_url=postgres_url)
    async with running_service(settings) as service:
        citizens = ["geel.citizen", "anna", "bert"]
        for citizen in citizens:
            await service.deliver(trip(citizen))  # 5 Kempen coins each
        merchant = Principal(demo_user_id("geel.merchant"), frozenset({"merchant"}), GEEL)

        def scan(citizen: str, nonce: UUID) -> redemption.Scan:
            wallet_id = domain.wallet_account(demo_user_id(citizen), demo.KEMPEN_COIN)
            claims = domain.QrClaims(
                wallet_id, demo.KEMPEN_COIN, nonce, datetime.now(UTC) + timedelta(minutes=1)
            )
            return redemption.Scan(merchant, demo.BAKERY, 2, claims, datetime.now(UTC))

        shared = uuid4()
        # Two processes' desks, each deciding a batch that holds the same code: their transactions collide on
        # the transfer id; the loser's batch is decided again scan by scan and finds the code used.
        desks = [redemption.RedemptionDesk(service.context.uow_factory, LIMITS) for _ in range(2)]
        outcomes = await asyncio.gather(
            *(desk.redeem(scan("geel.citizen", shared)) for desk in desks),
            desks[0].redeem(scan("anna", uuid4())),
            desks[1].redeem(scan("bert", uuid4())),
            return_exceptions=True,
        )
        kinds = [type(outcome).__name__ for outcome in outcomes]
        assert sorted(kinds[:2]) == ["QrAlreadyUsed", "RedemptionOut"], outcomes
        assert kinds[2:] == ["RedemptionOut", "RedemptionOut"], outcomes
        for citizen in citizens:
            headers = service.headers("geel.citizen", sub=demo_user_id(citizen))
            wallet = (await service.client.get("/v1/wallet", headers=headers)).json()
            assert wallet[0]["balance"] == 3
    ledger = Ledger.from_url(postgres_url)
    try:
        assert (await ledger.verify()).ok
    finally:
        await ledger.close()
