"""The API end to end on the demo data: earn by a trip, redeem by QR, refund, pass on, settle, expire."""

from __future__ import annotations

from typing import Any

from incentives import demo
from incentives.testing import GEEL, HASSELT, Service, stop_delivered, trip


async def kempen_balance(service: Service, username: str) -> int:
    wallet = await service.call("GET", "/v1/wallet", username)
    return sum(w["balance"] for w in wallet if w["coin_code"] == "KEMPEN")


async def test_bus_trip_earns_kempen_coins_once_per_event(service: Service) -> None:
    envelope = await service.deliver(trip())
    await service.context.consumer.deliver(envelope)
    assert await kempen_balance(service, "geel.citizen") == 5


async def test_car_trip_earns_nothing(service: Service) -> None:
    await service.deliver(trip(mode="taxi"))
    assert await service.call("GET", "/v1/wallet", "geel.citizen") == []


async def test_hasselt_trip_counts_for_the_regional_campaign(service: Service) -> None:
    await service.deliver(trip("hasselt.citizen", mode="shared_bike"), tenant=HASSELT)
    assert await kempen_balance(service, "hasselt.citizen") == 5


async def qr(service: Service, username: str = "geel.citizen", **extra: Any) -> str:
    body = {"coin_type_id": str(demo.KEMPEN_COIN), **extra}
    payload: str = (await service.call("POST", "/v1/wallet/qr", username, body))["payload"]
    return payload


async def test_citizen_redeems_at_a_geel_merchant_who_is_settled_in_euro(service: Service) -> None:
    for _ in range(3):
        await service.deliver(trip())
    body = {"qr": await qr(service), "merchant_id": str(demo.BAKERY), "amount": 12}
    redemption = await service.call("POST", "/v1/redemptions", "geel.merchant", body, status=201)
    assert redemption["wallet_balance_after"] == 3
    settled = await service.call(
        "POST",
        "/v1/settlements",
        "geel.city_admin",
        {"period_start": "2026-01-01", "period_end": "2099-12-31"},
        status=201,
    )
    assert [(s["coin_code"], s["coins"], s["amount_cents"]) for s in settled["statements"]] == [
        ("KEMPEN", 12, 120)
    ]
    statements = await service.call("GET", "/v1/merchant/statements", "geel.merchant")
    assert statements[0]["amount_cents"] == 120
    xml = await service.call("GET", f"/v1/settlements/{settled['batch_id']}/pain001", "geel.city_admin")
    assert "<CtrlSum>1.20</CtrlSum>" in xml.text


async def test_a_qr_code_redeems_once(service: Service) -> None:
    await service.deliver(trip())
    payload = await qr(service)
    body = {"qr": payload, "merchant_id": str(demo.BAKERY), "amount": 1}
    await service.call("POST", "/v1/redemptions", "geel.merchant", body, status=201)
    await service.call("POST", "/v1/redemptions", "geel.merchant", body, status=409)


async def test_cargo_bike_delivery_rewards_the_receiving_shop(service: Service) -> None:
    await service.deliver(stop_delivered(demo.BIKE_SHOP_KBO))
    await service.deliver(stop_delivered(demo.BIKE_SHOP_KBO, vehicle_kind="van"))
    balances = await service.call("GET", "/v1/merchant/balances", "geel.merchant")
    held = {(b["merchant_name"], b["coin_code"]): b["balance"] for b in balances}
    assert held[("Fietsen Van Geel", "GEEL")] == 20


async def test_school_approves_a_bike_to_school_claim(service: Service) -> None:
    campaigns = await service.call("GET", "/v1/campaigns", "geel.city_admin")
    school = next(c for c in campaigns if c["name"] == "Met de fiets naar school")
    claim = await service.call(
        "POST",
        "/v1/claims",
        "geel.citizen",
        {"campaign_id": school["id"], "evidence": "scan 07:55"},
        status=201,
    )
    decided = await service.call(
        "POST", f"/v1/claims/{claim['id']}/decision", "geel.school", {"approve": True}
    )
    assert decided["status"] == "approved"
    wallet = await service.call("GET", "/v1/wallet", "geel.citizen")
    assert [(w["coin_code"], w["balance"]) for w in wallet] == [("GEEL", 10)]
    await service.call(
        "POST", f"/v1/claims/{claim['id']}/decision", "geel.school", {"approve": True}, status=409
    )


async def test_hasselt_admin_cannot_see_or_end_geel_campaigns(service: Service) -> None:
    campaigns = await service.call("GET", "/v1/campaigns", "geel.city_admin")
    assert await service.call("GET", "/v1/campaigns", "hasselt.city_admin") == []
    await service.call("POST", f"/v1/campaigns/{campaigns[0]['id']}/end", "hasselt.city_admin", status=404)
    await service.call("GET", "/v1/campaigns", "geel.citizen", status=403)


async def test_a_rule_with_an_unknown_mode_is_refused_with_the_field_named(service: Service) -> None:
    rule = {
        "trigger": "be.cityblocks.mobility-credit.TripPaid.v1",
        "condition": "mode in ['bike', 'bus']",
        "beneficiary_field": "citizen_id",
        "reward_coins": 5,
    }
    response = await service.client.post(
        "/v1/rules/check", json=rule, headers=service.headers("geel.city_admin")
    )
    assert response.status_code == 422
    assert "mode is never 'bike'" in response.text
    assert GEEL


async def test_a_rule_cannot_be_triggered_by_the_service_s_own_events(service: Service) -> None:
    rule = {
        "trigger": "be.cityblocks.incentives.CoinsIssued.v1",
        "beneficiary_field": "beneficiary_id",
        "reward_coins": 1,
    }
    response = await service.client.post(
        "/v1/rules/check", json=rule, headers=service.headers("geel.city_admin")
    )
    assert response.status_code == 422
    assert "unknown trigger" in response.text
