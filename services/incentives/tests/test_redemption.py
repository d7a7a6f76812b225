"""Group commit of redemptions: scans decided in one transaction each get their own answer and effect."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from incentives import demo, domain, models, redemption
from incentives.testing import GEEL, Service, running_service, settings_for, trip
from servicekit.auth import Principal
from servicekit.devidp import demo_user_id

MERCHANT = Principal(demo_user_id("geel.merchant"), frozenset({"merchant"}), GEEL)
LIMITS = domain.VelocityLimits()


def scan(
    citizen: str, amount: int, *, merchant: Principal = MERCHANT, nonce: object = None
) -> redemption.Scan:
    wallet_id = domain.wallet_account(demo_user_id(citizen), demo.KEMPEN_COIN)
    expires = datetime.now(UTC) + timedelta(minutes=1)
    claims = domain.QrClaims(wallet_id, demo.KEMPEN_COIN, nonce or uuid4(), expires)  # type: ignore[arg-type]
    return redemption.Scan(merchant, demo.BAKERY, amount, claims, datetime.now(UTC))


async def earn(service: Service, citizen: str, trips: int) -> None:
    for _ in range(trips):
        await service.deliver(trip(citizen))


async def balance(service: Service, citizen: str) -> int:
    headers = service.headers("geel.citizen", sub=demo_user_id(citizen))
    response = await service.client.get("/v1/wallet", headers=headers)
    return int(response.json()[0]["balance"])


async def test_scans_decided_together_each_get_their_own_answer_and_only_theirs_change_the_ledger(
    service: Service,
) -> None:
    for citizen in ("geel.citizen", "anna", "bert"):
        await earn(service, citizen, 1)  # 5 coins each
    used = uuid4()
    stranger = Principal("someone-else", frozenset({"merchant"}), GEEL)
    scans = [
        scan("geel.citizen", 3, nonce=used),
        scan("anna", 6),  # more than the wallet holds
        scan("bert", 2, merchant=stranger),  # not the shop's owner
        scan("geel.citizen", 1, nonce=used),  # the same payload again
        scan("bert", 5),
        scan("nobody", 1),  # no wallet
    ]
    outcomes = await redemption.redeem_together(service.context.uow_factory, scans, LIMITS)
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == [
        "RedemptionOut",
        "InsufficientCoins",
        "NotFound",
        "QrAlreadyUsed",
        "RedemptionOut",
        "NotFound",
    ]
    first, fifth = outcomes[0], outcomes[4]
    assert isinstance(first, models.RedemptionOut) and isinstance(fifth, models.RedemptionOut)
    assert (first.wallet_balance_after, fifth.wallet_balance_after) == (2, 0)
    assert [await balance(service, c) for c in ("geel.citizen", "anna", "bert")] == [2, 5, 0]


async def test_one_wallet_scanned_many_times_at_once_stays_within_its_velocity_limit(tmp_path: Path) -> None:
    async with running_service(settings_for(tmp_path, wallet_max_redemptions=3)) as service:
        await earn(service, "geel.citizen", 4)
        desk = redemption.RedemptionDesk(service.context.uow_factory, service.settings.velocity_limits())
        outcomes = await asyncio.gather(
            *(desk.redeem(scan("geel.citizen", 1)) for _ in range(6)), return_exceptions=True
        )
        kinds = sorted(type(o).__name__ for o in outcomes)
        assert kinds == ["RedemptionOut"] * 3 + ["VelocityLimitExceeded"] * 3
        assert await balance(service, "geel.citizen") == 17


async def test_a_scan_refused_by_the_ledger_does_not_count_against_a_later_scan_of_the_same_wallet(
    tmp_path: Path,
) -> None:
    async with running_service(settings_for(tmp_path, wallet_max_redemptions=1)) as service:
        await earn(service, "geel.citizen", 1)
        desk = redemption.RedemptionDesk(service.context.uow_factory, service.settings.velocity_limits())
        too_much, fits = await asyncio.gather(
            desk.redeem(scan("geel.citizen", 50)),
            desk.redeem(scan("geel.citizen", 2)),
            return_exceptions=True,
        )
        assert isinstance(too_much, domain.InsufficientCoins)
        assert isinstance(fits, models.RedemptionOut) and fits.wallet_balance_after == 3


async def test_a_scan_that_breaks_its_transaction_fails_alone(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    for citizen in ("geel.citizen", "anna", "bert"):
        await earn(service, citizen, 1)
    original = redemption.redeemed_event

    def fragile(scan: redemption.Scan, merchant: object, coin: domain.CoinType) -> object:
        if scan.amount == 4:
            raise RuntimeError("this one breaks")
        return original(scan, merchant, coin)

    monkeypatch.setattr(redemption, "redeemed_event", fragile)
    desk = redemption.RedemptionDesk(service.context.uow_factory, LIMITS)
    outcomes = await asyncio.gather(
        desk.redeem(scan("geel.citizen", 2)),
        desk.redeem(scan("anna", 4)),
        desk.redeem(scan("bert", 3)),
        return_exceptions=True,
    )
    assert [type(o).__name__ for o in outcomes] == ["RedemptionOut", "RuntimeError", "RedemptionOut"]
    assert [await balance(service, c) for c in ("geel.citizen", "anna", "bert")] == [3, 5, 2]


async def test_concurrent_scans_over_http_are_answered_one_by_one(service: Service) -> None:
    citizens = [f"citizen-{n}" for n in range(8)]
    for citizen in citizens:
        await earn(service, citizen, 1)
    headers = service.headers("geel.merchant")

    async def redeem(citizen: str, amount: int) -> int:
        payload = domain.sign_qr(b"test-secret", scan(citizen, amount).claims)
        body = {"qr": payload, "merchant_id": str(demo.BAKERY), "amount": amount}
        response = await service.client.post("/v1/redemptions", json=body, headers=headers)
        if response.status_code != 201:
            assert response.headers["content-type"] == "application/problem+json"
        return response.status_code

    statuses = await asyncio.gather(*(redeem(c, 9 if n % 2 else 4) for n, c in enumerate(citizens)))
    assert statuses == [201, 409] * 4
    assert [await balance(service, c) for c in citizens] == [1, 5] * 4
