"""The HTTP API: the done-when journey, authorisation, tenants, idempotency and refused input."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from eventbus.tables import outbox
from mobility_credit.app import create_app
from mobility_credit.domain import LOCAL_TIME
from mobility_credit.handlers.queries import report, verify_ledger
from mobility_credit.testing import (
    BLUE_BIKE,
    CITIZEN,
    DE_LIJN,
    GEEL_BUS,
    PREMIUM,
    TAXI,
    World,
    new_key,
    settings_for,
    trip,
)


async def ledger_state(world: World) -> dict[str, Any]:
    """Everything that must not change when a request is refused."""
    summary = await report(world.uow_factory, "71022")
    wallet = (await world.as_user("hasselt.citizen").get("/v1/me/wallet")).json()
    return {"report": summary.model_dump(), "wallet": wallet}


async def assert_ledger_sound(world: World) -> None:
    verification = await verify_ledger(world.uow_factory)
    assert verification["ok"], verification
    summary = await report(world.uow_factory, "71022")
    assert summary.balanced, summary


async def test_citizen_pays_a_bus_and_a_shared_bike_trip_and_the_provider_settlement_shows_them(
    world: World,
) -> None:
    provider = world.as_user("hasselt.provider")
    citizen = world.as_user("hasselt.citizen")
    before = (await citizen.get("/v1/me/wallet")).json()

    bus = await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(mode="bus", total=300), key=new_key())
    bike = await provider.post(
        f"/v1/providers/{BLUE_BIKE}/trips", trip(mode="shared_bike", total=400), key=new_key()
    )

    assert bus.status_code == 201, bus.text
    assert bike.status_code == 201, bike.text
    assert bus.json()["city_share_cents"] == 300
    after = (await citizen.get("/v1/me/wallet")).json()
    spent = bus.json()["city_share_cents"] + bike.json()["city_share_cents"]
    assert after["available_cents"] == before["available_cents"] - spent
    history = (await citizen.get("/v1/me/history")).json()
    assert {item["trip"]["id"] for item in history if item["kind"] == "trip"} == {
        bus.json()["id"],
        bike.json()["id"],
    }

    admin = world.as_user("hasselt.city_admin")
    today = datetime.now(LOCAL_TIME).date().isoformat()
    run = await admin.post("/v1/settlement-runs", {"period_start": "2026-01-01", "period_end": today})
    assert run.status_code == 201, run.text
    settlements = (await provider.get(f"/v1/providers/{DE_LIJN}/settlements")).json()
    assert settlements[0]["trips"] == 1
    assert settlements[0]["per_mode"] == [{"mode": "bus", "trips": 1, "amount_cents": 300}]
    bikes = (await provider.get(f"/v1/providers/{BLUE_BIKE}/settlements")).json()
    assert bikes[0]["amount_cents"] == bike.json()["city_share_cents"]
    await assert_ledger_sound(world)


async def test_a_citizen_sees_only_their_own_wallet(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(), key=new_key())

    stranger = world.as_citizen("someone-else")
    wallet = (await stranger.get("/v1/me/wallet")).json()
    history = (await stranger.get("/v1/me/history")).json()

    assert wallet["available_cents"] == 0 and wallet["grants"] == []
    assert history == []


async def test_a_provider_sees_only_its_own_providers_and_trips(world: World) -> None:
    geel_provider = world.as_user("geel.provider")

    trips = await geel_provider.get(f"/v1/providers/{DE_LIJN}/trips")
    paid = await geel_provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(), key=new_key())
    listed = (await geel_provider.get("/v1/providers")).json()

    assert trips.status_code == 404
    assert paid.status_code == 404
    assert [p["id"] for p in listed] == [str(GEEL_BUS)]


async def test_another_citys_grant_is_not_spendable_and_not_visible(world: World) -> None:
    geel_provider = world.as_user("geel.provider")

    paid = await geel_provider.post(f"/v1/providers/{GEEL_BUS}/trips", trip(citizen=CITIZEN), key=new_key())

    assert paid.status_code == 422
    assert paid.json()["code"] == "not_eligible"


async def test_roles_are_enforced(world: World) -> None:
    citizen = world.as_user("hasselt.citizen")

    paid = await citizen.post(f"/v1/providers/{DE_LIJN}/trips", trip(), key=new_key())
    schemes = await citizen.get("/v1/schemes")
    anonymous = await world.client.get("/v1/me/wallet")

    assert paid.status_code == 403
    assert schemes.status_code == 403
    assert anonymous.status_code == 401


async def test_the_same_key_and_body_returns_the_original_payment(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    key, body = new_key(), trip()

    first = await provider.post(f"/v1/providers/{DE_LIJN}/trips", body, key=key)
    state = await ledger_state(world)
    again = await provider.post(f"/v1/providers/{DE_LIJN}/trips", body, key=key)

    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert await ledger_state(world) == state


async def test_the_same_key_with_another_body_is_a_conflict(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    key = new_key()
    await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(total=300), key=key)
    state = await ledger_state(world)

    other = await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(total=500), key=key)

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert await ledger_state(world) == state


async def test_a_payment_needs_an_idempotency_key(world: World) -> None:
    response = await world.as_user("hasselt.provider").post(f"/v1/providers/{DE_LIJN}/trips", trip())

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_bad_input_is_refused_with_a_code_and_the_ledger_is_unchanged(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    state = await ledger_state(world)
    path = f"/v1/providers/{DE_LIJN}/trips"

    unknown_provider = await provider.post(f"/v1/providers/{CITIZEN}/trips", trip(), key=new_key())
    unknown_citizen = await provider.post(path, trip(citizen="nobody"), key=new_key())
    zero = await provider.post(path, trip(total=0), key=new_key())
    fraction = await provider.post(path, {**trip(), "total_cents": 2.5}, key=new_key())
    wrong_mode = await provider.post(path, trip(mode="taxi"), key=new_key())
    overspent = await provider.post(path, trip(total=900_000), key=new_key())

    assert unknown_provider.status_code == 404
    assert unknown_citizen.json()["code"] == "not_eligible"
    assert zero.status_code == fraction.status_code == 422
    assert zero.json()["errors"][0]["loc"] == ["body", "total_cents"]
    assert wrong_mode.json()["code"] == "not_eligible"
    assert overspent.status_code == 409 and overspent.json()["code"] == "insufficient_budget"
    assert await ledger_state(world) == state


async def test_a_hold_is_captured_at_most_at_its_amount_and_only_once(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    hold = await provider.post(
        f"/v1/providers/{TAXI}/holds",
        {**_hold_body(), "estimated_total_cents": 2_000},
        key=new_key(),
    )
    assert hold.status_code == 201, hold.text
    hold_id = hold.json()["id"]
    assert hold.json()["amount_cents"] == 1_000  # taxi: 50 % of the estimate
    state = await ledger_state(world)

    too_much = await provider.post(
        f"/v1/providers/{TAXI}/holds/{hold_id}/capture", {"total_cents": 2_500}, key=new_key()
    )
    assert too_much.status_code == 409 and too_much.json()["code"] == "capture_exceeds_hold"
    assert await ledger_state(world) == state

    captured = await provider.post(
        f"/v1/providers/{TAXI}/holds/{hold_id}/capture", {"total_cents": 1_600}, key=new_key()
    )
    twice = await provider.post(
        f"/v1/providers/{TAXI}/holds/{hold_id}/capture", {"total_cents": 1_600}, key=new_key()
    )
    voided = await provider.post(f"/v1/providers/{TAXI}/holds/{hold_id}/void", key=new_key())

    assert captured.status_code == 200, captured.text
    assert captured.json()["city_share_cents"] == 800
    assert captured.json()["hold_id"] == hold_id
    assert twice.json()["code"] == voided.json()["code"] == "hold_not_open"
    wallet = (await world.as_user("hasselt.citizen").get("/v1/me/wallet")).json()
    assert wallet["held_cents"] == 0
    await assert_ledger_sound(world)


def _hold_body() -> dict[str, Any]:
    body = trip(mode="taxi")
    body.pop("total_cents")
    return body


async def test_a_voided_hold_gives_the_budget_back(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    citizen = world.as_user("hasselt.citizen")
    before = (await citizen.get("/v1/me/wallet")).json()["available_cents"]
    hold = await provider.post(
        f"/v1/providers/{TAXI}/holds", {**_hold_body(), "estimated_total_cents": 1_000}, key=new_key()
    )
    during = (await citizen.get("/v1/me/wallet")).json()

    voided = await provider.post(f"/v1/providers/{TAXI}/holds/{hold.json()['id']}/void", key=new_key())

    assert during["available_cents"] == before - 500 and during["held_cents"] == 500
    assert voided.json()["status"] == "voided"
    assert (await citizen.get("/v1/me/wallet")).json()["available_cents"] == before
    await assert_ledger_sound(world)


async def test_an_expired_hold_cannot_be_captured_and_the_sweep_releases_it(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    admin = world.as_user("hasselt.city_admin")
    hold = await provider.post(
        f"/v1/providers/{TAXI}/holds",
        {**_hold_body(), "estimated_total_cents": 1_000, "expires_in_s": 1},
        key=new_key(),
    )
    hold_id = hold.json()["id"]
    await asyncio.sleep(1.1)

    late = await provider.post(
        f"/v1/providers/{TAXI}/holds/{hold_id}/capture", {"total_cents": 900}, key=new_key()
    )
    swept = await admin.post("/v1/admin/sweeps")
    status = await provider.get(f"/v1/providers/{TAXI}/holds/{hold_id}")

    assert late.status_code == 409 and late.json()["code"] == "hold_expired"
    assert swept.json()["expired_holds"] == 1
    assert status.json()["status"] == "expired"
    assert (await world.as_user("hasselt.citizen").get("/v1/me/wallet")).json()["held_cents"] == 0
    await assert_ledger_sound(world)


async def test_a_refund_returns_the_city_share_to_the_budget_once(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    paid = (await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(total=300), key=new_key())).json()
    path = f"/v1/providers/{DE_LIJN}/trips/{paid['id']}/refunds"

    partial = await provider.post(path, {"amount_cents": 100}, key=new_key())
    rest = await provider.post(path, {}, key=new_key())
    more = await provider.post(path, {"amount_cents": 1}, key=new_key())

    assert partial.json()["amount_cents"] == 100
    assert rest.json()["amount_cents"] == 200
    assert more.status_code == 409 and more.json()["code"] == "refund_exceeds_trip"
    await assert_ledger_sound(world)


async def test_grants_are_idempotent_per_citizen_and_scheme(world: World) -> None:

    admin = world.as_user("hasselt.city_admin")
    body = {"citizen_id": "new-citizen", "on": "2026-04-10"}

    first = await admin.post(f"/v1/schemes/{PREMIUM}/grants", body)
    again = await admin.post(f"/v1/schemes/{PREMIUM}/grants", body)
    wallet = (await world.as_citizen("new-citizen").get("/v1/me/wallet")).json()

    assert first.json() == again.json()
    assert wallet["available_cents"] == 50_000
    assert len(wallet["grants"]) == 1


async def test_a_monthly_statement_adds_up(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(total=250), key=new_key())
    month = datetime.now(LOCAL_TIME).strftime("%Y-%m")

    statement = (await world.as_user("hasselt.citizen").get(f"/v1/me/statements/{month}")).json()

    assert statement["spent_cents"] == 250
    assert statement["closing_cents"] == statement["opening_cents"] + statement["granted_cents"] - 250


async def outbox_types(world: World) -> list[str]:
    async with world.uow_factory() as uow:
        rows = await uow.session.execute(sa.select(outbox.c.type).order_by(outbox.c.seq))
        return [row.type for row in rows]


async def test_a_paid_trip_is_published_as_the_oslo_consumptie_event(world: World) -> None:
    provider = world.as_user("hasselt.provider")

    paid = (await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(total=300), key=new_key())).json()

    async with world.uow_factory() as uow:
        row = (await uow.session.execute(sa.select(outbox).where(outbox.c.type.like("%TripPaid%")))).one()
    data = row.data if isinstance(row.data, dict) else json.loads(row.data)
    assert data["trip_id"] == paid["id"]
    assert (data["mode"], data["total_cents"], data["city_share_cents"], data["citizen_share_cents"]) == (
        "bus",
        300,
        300,
        0,
    )
    assert data["place"]["name"] == "Hasselt Kolonel Dusartplein"


async def test_expired_grants_move_what_is_left_to_the_expired_account(world: World) -> None:
    admin = world.as_user("hasselt.city_admin")
    citizen = world.as_user("hasselt.citizen")
    before = (await citizen.get("/v1/me/wallet")).json()

    swept = (await admin.post("/v1/admin/sweeps", params={"on": "2030-01-01"})).json()
    again = (await admin.post("/v1/admin/sweeps", params={"on": "2030-01-01"})).json()
    after = (await citizen.get("/v1/me/wallet")).json()

    assert swept["expired_grants"] >= 1 and swept["expired_cents"] >= before["available_cents"]
    assert again["expired_grants"] == 0
    assert after["available_cents"] == 0
    assert after["grants"][0]["expired_cents"] == before["grants"][0]["available_cents"]
    assert "be.cityblocks.mobility-credit.CreditExpired.v1" in await outbox_types(world)
    await assert_ledger_sound(world)


async def test_the_background_sweep_expires_overdue_holds(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, sweep_interval_s=0.5)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mobility") as client:
            world = World(app, client, settings)
            provider = world.as_user("hasselt.provider")
            body = {**_hold_body(), "estimated_total_cents": 1_000, "expires_in_s": 1}
            hold = (await provider.post(f"/v1/providers/{TAXI}/holds", body, key=new_key())).json()
            path = f"/v1/providers/{TAXI}/holds/{hold['id']}"
            statuses = []
            for _ in range(50):
                statuses.append((await provider.get(path)).json()["status"])
                if statuses[-1] != "open":
                    break
                await asyncio.sleep(0.2)
            assert statuses[-1] == "expired"
            assert "be.cityblocks.mobility-credit.HoldExpired.v1" in await outbox_types(world)
