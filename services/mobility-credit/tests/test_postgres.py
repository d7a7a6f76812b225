"""The PostgreSQL tier: the journey, and budgets, caps and idempotency keys under concurrent requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from mobility_credit.app import create_app
from mobility_credit.domain import LOCAL_TIME
from mobility_credit.handlers.queries import report, verify_ledger
from mobility_credit.handlers.trip_batches import TripBatcher
from mobility_credit.models import PlaceIn, TripIn
from mobility_credit.testing import (
    BLUE_BIKE,
    DE_LIJN,
    PREMIUM,
    TAXI,
    World,
    new_key,
    principal_of,
    settings_for,
    trip,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_world(tmp_path: Path, postgres_url: str) -> AsyncIterator[World]:
    settings = settings_for(tmp_path, database_url=postgres_url, db_pool_size=20)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mobility") as client:
            yield World(app, client, settings)


async def assert_sound(world: World) -> None:
    verification = await verify_ledger(world.uow_factory)
    assert verification["ok"], verification
    assert (await report(world.uow_factory, "71022")).balanced


async def test_the_journey_on_postgresql(pg_world: World) -> None:
    provider = pg_world.as_user("hasselt.provider")
    bus = await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(mode="bus"), key=new_key())
    bike = await provider.post(f"/v1/providers/{BLUE_BIKE}/trips", trip(mode="shared_bike"), key=new_key())
    history = (await pg_world.as_user("hasselt.citizen").get("/v1/me/history")).json()
    today = datetime.now(LOCAL_TIME).date().isoformat()
    admin = pg_world.as_user("hasselt.city_admin")
    run = await admin.post("/v1/settlement-runs", {"period_start": "2026-01-01", "period_end": today})
    settlements = (await provider.get(f"/v1/providers/{DE_LIJN}/settlements")).json()

    assert bus.status_code == bike.status_code == 201
    assert {i["trip"]["id"] for i in history if i["kind"] == "trip"} == {bus.json()["id"], bike.json()["id"]}
    assert run.status_code == 201
    assert settlements[0]["trips"] == 1
    await assert_sound(pg_world)


async def test_concurrent_payments_never_overspend_a_budget(pg_world: World) -> None:
    admin = pg_world.as_user("hasselt.city_admin")
    await admin.post(f"/v1/schemes/{PREMIUM}/grants", {"citizen_id": "racer"})  # EUR 500
    provider = pg_world.as_user("hasselt.provider")

    answers = await asyncio.gather(
        *(
            provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(citizen="racer", total=3_000), key=new_key())
            for _ in range(24)
        )
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 16  # 16 x EUR 30 fit in EUR 500, the 17th does not
    assert {a.json()["code"] for a in answers if a.status_code != 201} == {"insufficient_budget"}
    wallet = (await pg_world.as_citizen("racer").get("/v1/me/wallet")).json()
    assert wallet["available_cents"] == 50_000 - 16 * 3_000
    await assert_sound(pg_world)


async def test_concurrent_taxi_trips_never_exceed_the_monthly_cap(pg_world: World) -> None:
    admin = pg_world.as_user("hasselt.city_admin")
    scheme = {
        "name": "Taxi test",
        "kind": "one_off",
        "amount_cents": 50_000,
        "valid_from": "2026-01-01",
        "rules": [{"mode": "taxi"}],
        "caps": [{"amount_cents": 2_500, "period": "month", "mode": "taxi"}],
    }
    created = (await admin.post("/v1/schemes", scheme)).json()
    await admin.post(f"/v1/schemes/{created['id']}/grants", {"citizen_id": "cabby"})
    provider = pg_world.as_user("hasselt.provider")

    answers = await asyncio.gather(
        *(
            provider.post(
                f"/v1/providers/{TAXI}/trips", trip(citizen="cabby", mode="taxi", total=1_000), key=new_key()
            )
            for _ in range(8)
        )
    )

    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    city = sorted(a.json()["city_share_cents"] for a in answers)
    assert city == [0] * 5 + [500, 1_000, 1_000]  # EUR 25 a month, whoever comes first
    wallet = (await pg_world.as_citizen("cabby").get("/v1/me/wallet")).json()
    assert wallet["available_cents"] == 50_000 - 2_500
    await assert_sound(pg_world)


async def test_concurrent_requests_with_one_key_pay_once(pg_world: World) -> None:
    provider = pg_world.as_user("hasselt.provider")
    key, body = new_key(), trip(total=200)

    answers = await asyncio.gather(
        *(provider.post(f"/v1/providers/{DE_LIJN}/trips", body, key=key) for _ in range(8))
    )

    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    trips = (await provider.get(f"/v1/providers/{DE_LIJN}/trips")).json()
    assert len(trips) == 1
    await assert_sound(pg_world)


async def test_a_payment_the_database_refuses_fails_alone_in_its_batch(pg_world: World) -> None:
    admin = pg_world.as_user("hasselt.city_admin")
    for citizen in ("gus", "hal"):
        await admin.post(f"/v1/schemes/{PREMIUM}/grants", {"citizen_id": citizen})
    batcher = TripBatcher(pg_world.uow_factory, in_flight=1)
    provider = principal_of("hasselt.provider")
    # Past the checks of the HTTP layer: a place name longer than its column.
    place = PlaceIn.model_construct(name="x" * 300, lat=None, lon=None)
    poison = TripIn.model_validate(trip(citizen="gus")).model_copy(update={"place": place})

    first = asyncio.create_task(batcher.pay(provider, DE_LIJN, TripIn.model_validate(trip("hal")), new_key()))
    await asyncio.sleep(0)
    answers = await asyncio.gather(
        batcher.pay(provider, DE_LIJN, TripIn.model_validate(trip("gus", total=250)), new_key()),
        batcher.pay(provider, DE_LIJN, poison, new_key()),
        batcher.pay(provider, DE_LIJN, TripIn.model_validate(trip("hal", total=150)), new_key()),
        return_exceptions=True,
    )

    assert (await first)[0] == 201
    good, refused, other = answers
    assert isinstance(good, tuple) and good[0] == 201 and good[1]["city_share_cents"] == 250
    assert isinstance(other, tuple) and other[0] == 201 and other[1]["city_share_cents"] == 150
    assert isinstance(refused, Exception)
    trips = (await pg_world.as_user("hasselt.provider").get(f"/v1/providers/{DE_LIJN}/trips")).json()
    assert sorted(t["total_cents"] for t in trips) == [150, 250, 300]
    await assert_sound(pg_world)
