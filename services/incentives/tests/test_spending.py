"""Spending: QR replay and expiry, partial redemptions, refunds, transfers, velocity, who may do what."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from incentives import demo, domain
from incentives.testing import Service, running_service, settings_for, trip


async def earn(service: Service, trips: int = 4, username: str = "geel.citizen") -> None:
    for _ in range(trips):
        await service.deliver(trip(username))


async def qr(service: Service, username: str = "geel.citizen", **extra: Any) -> str:
    body = {"coin_type_id": str(demo.KEMPEN_COIN), **extra}
    payload: str = (await service.call("POST", "/v1/wallet/qr", username, body))["payload"]
    return payload


def redeem_body(payload: str, amount: int, merchant: Any = demo.BAKERY) -> dict[str, Any]:
    return {"qr": payload, "merchant_id": str(merchant), "amount": amount}


async def test_partial_redemptions_leave_the_rest_in_the_wallet(service: Service) -> None:
    await earn(service)
    first = await service.call(
        "POST", "/v1/redemptions", "geel.merchant", redeem_body(await qr(service), 7), status=201
    )
    second = await service.call(
        "POST", "/v1/redemptions", "geel.merchant", redeem_body(await qr(service), 3), status=201
    )
    assert (first["wallet_balance_after"], second["wallet_balance_after"]) == (13, 10)


async def test_redeeming_more_than_the_wallet_holds_changes_nothing(service: Service) -> None:
    await earn(service, 1)
    payload = await qr(service)
    await service.call("POST", "/v1/redemptions", "geel.merchant", redeem_body(payload, 6), status=409)
    # The refused scan did not burn the one-time code.
    await service.call("POST", "/v1/redemptions", "geel.merchant", redeem_body(payload, 5), status=201)


async def test_a_qr_code_scanned_twice_at_once_redeems_once(service: Service) -> None:
    await earn(service)
    body = redeem_body(await qr(service), 5)
    responses = await asyncio.gather(
        *(
            service.client.post("/v1/redemptions", json=body, headers=service.headers("geel.merchant"))
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    wallet = await service.call("GET", "/v1/wallet", "geel.citizen")
    assert wallet[0]["balance"] == 15


async def test_an_expired_or_foreign_qr_code_is_refused(service: Service) -> None:
    await earn(service)
    wallet_id = domain.wallet_account(demo_subject("geel.citizen"), demo.KEMPEN_COIN)
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = domain.sign_qr(b"test-secret", domain.QrClaims(wallet_id, demo.KEMPEN_COIN, uuid4(), past))
    forged = domain.sign_qr(
        b"other", domain.QrClaims(wallet_id, demo.KEMPEN_COIN, uuid4(), past + timedelta(hours=1))
    )
    for payload in (expired, forged):
        response = await service.client.post(
            "/v1/redemptions", json=redeem_body(payload, 1), headers=service.headers("geel.merchant")
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"


def demo_subject(username: str) -> str:
    from servicekit.devidp import demo_user_id

    return demo_user_id(username)


async def test_the_citizen_can_cap_what_a_code_may_take(service: Service) -> None:
    await earn(service)
    payload = await qr(service, max_amount=4)
    await service.call("POST", "/v1/redemptions", "geel.merchant", redeem_body(payload, 5), status=409)


async def test_refunds_return_at_most_what_was_redeemed(service: Service) -> None:
    await earn(service)
    redemption = await service.call(
        "POST", "/v1/redemptions", "geel.merchant", redeem_body(await qr(service), 8), status=201
    )
    path = f"/v1/redemptions/{redemption['redemption_id']}/refunds"
    refunded = await service.call("POST", path, "geel.merchant", {"amount": 5})
    assert (refunded["refunded"], refunded["wallet_balance_after"]) == (5, 17)
    await service.call("POST", path, "geel.merchant", {"amount": 4}, status=409)


async def test_a_merchant_passes_coins_on_to_another_merchant_once_per_transfer_id(service: Service) -> None:
    await earn(service)
    await service.call(
        "POST", "/v1/redemptions", "geel.merchant", redeem_body(await qr(service), 10), status=201
    )
    body = {
        "to_merchant_id": str(demo.BIKE_SHOP),
        "coin_type_id": str(demo.KEMPEN_COIN),
        "amount": 6,
        "transfer_id": str(uuid4()),
    }
    for _ in range(2):
        moved = await service.call("POST", f"/v1/merchants/{demo.BAKERY}/transfers", "geel.merchant", body)
        assert moved["balance_after"] == 4
    await service.call(
        "POST",
        f"/v1/merchants/{demo.BAKERY}/transfers",
        "geel.merchant",
        {**body, "transfer_id": str(uuid4())},
        status=409,
    )


async def test_velocity_limits_stop_rapid_redemptions(tmp_path: Path) -> None:
    async with running_service(settings_for(tmp_path, wallet_max_redemptions=2)) as service:
        await earn(service)
        for status in (201, 201, 429):
            await service.call(
                "POST", "/v1/redemptions", "geel.merchant", redeem_body(await qr(service), 1), status=status
            )


async def test_only_the_shop_s_own_merchant_redeems_there(service: Service) -> None:
    await earn(service)
    body = redeem_body(await qr(service), 1)
    await service.call("POST", "/v1/redemptions", "geel.citizen", body, status=403)
    await service.call("POST", "/v1/redemptions", "hasselt.merchant", body, status=404)


async def test_a_citizen_sees_only_their_own_wallet(service: Service) -> None:
    await earn(service)
    assert await service.call("GET", "/v1/wallet", "hasselt.citizen") == []
    await service.call("GET", "/v1/wallet", "geel.merchant", status=403)


async def test_a_hasselt_shop_cannot_take_kempen_coins(service: Service) -> None:
    body = {
        "name": "Hasselt shop",
        "kbo": "0555.123.476",
        "iban": "BE62510007547061",
        "owner_subject": "x",
        "coin_type_ids": [str(demo.KEMPEN_COIN)],
    }
    await service.call("POST", "/v1/merchants", "hasselt.city_admin", body, status=409)
    await service.call("POST", "/v1/merchants", "geel.city_admin", body, status=201)


async def test_kempen_coins_are_spent_at_a_shop_in_another_member_municipality(service: Service) -> None:
    herentals = "13011"
    admin = service.headers("geel.city_admin", tenant=herentals, sub="herentals-admin")
    owner = service.headers("geel.merchant", tenant=herentals, sub="herentals-shop")
    shop = {
        "name": "Herentals shop",
        "kbo": "0777.123.418",
        "iban": "BE62510007547061",
        "owner_subject": "herentals-shop",
        "coin_type_ids": [str(demo.KEMPEN_COIN)],
    }
    created = await service.client.post("/v1/merchants", json=shop, headers=admin)
    assert created.status_code == 201, created.text
    await earn(service, 1)
    body = redeem_body(await qr(service), 5, merchant=created.json()["id"])
    redeemed = await service.client.post("/v1/redemptions", json=body, headers=owner)
    assert redeemed.status_code == 201, redeemed.text
    local = {**shop, "kbo": "0456.789.034", "coin_type_ids": [str(demo.GEEL_COIN)]}
    assert (await service.client.post("/v1/merchants", json=local, headers=admin)).status_code == 409
