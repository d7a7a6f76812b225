"""Trip payments coalesced into shared transactions: each keeps its own answer, idempotency and caps."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobility_credit import domain
from mobility_credit.app import create_app
from mobility_credit.handlers.queries import report, verify_ledger
from mobility_credit.handlers.trip_batches import TripBatcher
from mobility_credit.models import TripIn
from mobility_credit.testing import DE_LIJN, HASSELT, PREMIUM, World, principal_of, settings_for, trip

MOMENT = datetime.now(UTC)
PROVIDER = principal_of("hasselt.provider")
CAPPED = {
    "name": "Bus met plafond",
    "kind": "one_off",
    "amount_cents": 5_000,
    "valid_from": "2026-01-01",
    "rules": [{"mode": "bus"}],
    "caps": [{"amount_cents": 3_000, "period": "month"}],
}


async def pay(batcher: TripBatcher, citizen: str, total: int, key: str) -> dict[str, Any] | str:
    """The answer's body, or the refusal's code; every trip of a test is taken at the same moment."""
    body = TripIn.model_validate(trip(citizen, total=total, at=MOMENT))
    try:
        _, answer = await batcher.pay(PROVIDER, DE_LIJN, body, key)
    except domain.MobilityCreditError as error:
        return error.code
    return answer


async def grant(world: World, scheme_id: str, citizen: str) -> None:
    answer = await world.as_user("hasselt.city_admin").post(
        f"/v1/schemes/{scheme_id}/grants", {"citizen_id": citizen}
    )
    assert answer.status_code == 201, answer.text


async def available(world: World, citizen: str) -> int:
    wallet = (await world.as_citizen(citizen).get("/v1/me/wallet")).json()
    cents: int = wallet["available_cents"]
    return cents


async def assert_sound(world: World) -> None:
    verification = await verify_ledger(world.uow_factory)
    assert verification["ok"], verification
    assert (await report(world.uow_factory, HASSELT)).balanced


async def test_waiting_payments_share_one_transaction_and_a_refused_one_fails_alone(world: World) -> None:
    for citizen in ("ann", "bob", "cas", "dora"):
        await grant(world, str(PREMIUM), citizen)  # EUR 500 each
    batcher = TripBatcher(world.uow_factory, in_flight=1)

    first = asyncio.create_task(pay(batcher, "ann", 100, "k-first"))
    await asyncio.sleep(0)  # the first payment's transaction starts; the others wait for it together
    answers = await asyncio.gather(
        pay(batcher, "bob", 60_000, "k-too-much"),
        pay(batcher, "cas", 250, "k-cas"),
        pay(batcher, "nobody", 250, "k-no-grant"),
        pay(batcher, "dora", 400, "k-dora"),
    )

    assert isinstance(await first, dict)
    too_much, cas, no_grant, dora = answers
    assert (too_much, no_grant) == ("insufficient_budget", "not_eligible")
    assert isinstance(cas, dict) and cas["city_share_cents"] == 250
    assert isinstance(dora, dict) and dora["city_share_cents"] == 400
    assert batcher.batches == 2
    assert await available(world, "bob") == 50_000  # the refused payment left the ledger as it was
    assert await available(world, "cas") == 50_000 - 250
    trips = (await world.as_user("hasselt.provider").get(f"/v1/providers/{DE_LIJN}/trips")).json()
    assert sorted(t["citizen_id"] for t in trips) == ["ann", "cas", "dora"]
    await assert_sound(world)


async def test_one_key_sent_at_once_pays_once_and_another_body_under_it_conflicts(world: World) -> None:
    await grant(world, str(PREMIUM), "eve")
    batcher = TripBatcher(world.uow_factory, in_flight=2)

    answers = await asyncio.gather(
        pay(batcher, "eve", 300, "k-eve"),
        pay(batcher, "eve", 300, "k-eve"),
        pay(batcher, "eve", 999, "k-eve"),
        pay(batcher, "eve", 300, "k-eve"),
    )

    same, again, other, third = answers
    assert isinstance(same, dict) and same == again == third
    assert other == "idempotency_key_reused"
    assert await available(world, "eve") == 50_000 - 300
    trips = (await world.as_user("hasselt.provider").get(f"/v1/providers/{DE_LIJN}/trips")).json()
    assert [t["id"] for t in trips if t["citizen_id"] == "eve"] == [same["id"]]


async def test_a_batch_of_one_citizens_payments_never_passes_the_cap(world: World) -> None:
    created = (await world.as_user("hasselt.city_admin").post("/v1/schemes", CAPPED)).json()
    await grant(world, created["id"], "fay")
    batcher = TripBatcher(world.uow_factory, in_flight=2)

    answers = await asyncio.gather(*(pay(batcher, "fay", 1_000, f"k-fay-{i}") for i in range(5)))

    shares = [a["city_share_cents"] for a in answers if isinstance(a, dict)]
    assert shares == [1_000, 1_000, 1_000, 0, 0]  # one after the other, in the order they came
    assert await available(world, "fay") == 5_000 - 3_000
    await assert_sound(world)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_world(request: pytest.FixtureRequest, world: World, tmp_path: Path) -> AsyncIterator[World]:
    """The service on SQLite, and on PostgreSQL: unique violations and retries differ between the two."""
    if request.param == "sqlite":
        yield world
        return
    settings = settings_for(tmp_path / "pg", database_url=request.getfixturevalue("postgres_url"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mobility") as client:
            yield World(app, client, settings)


async def test_a_key_sent_again_later_replays_its_answer_and_its_batch_still_pays_the_others(
    any_world: World,
) -> None:
    world = any_world
    created = (await world.as_user("hasselt.city_admin").post("/v1/schemes", CAPPED)).json()
    await grant(world, created["id"], "gus")
    await grant(world, str(PREMIUM), "hal")
    batcher = TripBatcher(world.uow_factory, in_flight=1)
    paid = await pay(batcher, "gus", 3_000, "k-gus-1")
    capped = await pay(batcher, "gus", 500, "k-gus-2")  # the cap is reached: no city share, no transfer
    assert isinstance(paid, dict) and isinstance(capped, dict) and capped["city_share_cents"] == 0

    # The first attempt of each batch does not look keys up: a used key rolls the batch back and the next
    # attempt replays it, whether its trip wrote a transfer or not; the new payment beside it pays once.
    answers = await asyncio.gather(
        pay(batcher, "gus", 3_000, "k-gus-1"),
        pay(batcher, "hal", 400, "k-hal-1"),
    )
    again = await asyncio.gather(pay(batcher, "gus", 500, "k-gus-2"), pay(batcher, "gus", 700, "k-gus-1"))

    assert answers[0] == paid
    assert isinstance(answers[1], dict) and answers[1]["city_share_cents"] == 400
    assert list(again) == [capped, "idempotency_key_reused"]
    assert await available(world, "gus") == 5_000 - 3_000
    assert await available(world, "hal") == 50_000 - 400
    await assert_sound(world)


@asynccontextmanager
async def service_from(seeded: Path) -> AsyncIterator[World]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        shutil.copytree(seeded, data_dir)
        app = create_app(settings_for(data_dir))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mobility") as client:
                yield World(app, client, settings_for(data_dir))


# A budget below the cap: some payments are capped, some refused for lack of budget.
BUDGET_CENTS = 2_500
TIGHT = CAPPED | {"name": "Bus krap", "amount_cents": BUDGET_CENTS}


def model(payments: list[tuple[int, int, int]]) -> dict[int, tuple[str, int]]:
    """What each key should answer when every citizen's payments run one at a time, in the order sent."""
    balance: dict[int, int] = {}
    used: dict[int, int] = {}
    answers: dict[int, tuple[str, int]] = {}
    for citizen, total, key in payments:
        if key in answers:
            continue
        city = min(total, 3_000 - used.get(citizen, 0))
        if city > balance.get(citizen, BUDGET_CENTS):
            answers[key] = ("insufficient_budget", 0)
            continue
        balance[citizen] = balance.get(citizen, BUDGET_CENTS) - city
        used[citizen] = used.get(citizen, 0) + city
        answers[key] = ("paid", city)
    return answers


PAYMENTS = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from([200, 700, 1_500, 2_600]), st.integers(0, 11)),
    min_size=1,
    max_size=14,
)


async def play(seeded: Path, payments: list[tuple[int, int, int]], in_flight: int) -> None:
    # One body per key: a key's later payments repeat its first (conflicts are tested above).
    first_body: dict[int, tuple[int, int]] = {}
    payments = [(*first_body.setdefault(k, (c, t)), k) for c, t, k in payments]
    async with service_from(seeded) as world:
        created = (await world.as_user("hasselt.city_admin").post("/v1/schemes", TIGHT)).json()
        for citizen in {c for c, _, _ in payments}:
            await grant(world, created["id"], f"c{citizen}")
        batcher = TripBatcher(world.uow_factory, in_flight=in_flight)

        answers = await asyncio.gather(*(pay(batcher, f"c{c}", t, f"k{k}") for c, t, k in payments))

        expected = model(payments)
        by_key: dict[int, Any] = {}
        for (_, _, key), answer in zip(payments, answers, strict=True):
            assert by_key.setdefault(key, answer) == answer  # a replay is the original answer
            code, city = expected[key]
            if code == "paid":
                assert isinstance(answer, dict) and answer["city_share_cents"] == city
            else:
                assert answer == code
        for citizen in {c for c, _, _ in payments}:
            paid = sum(city for key, (code, city) in expected.items() if first_body[key][0] == citizen)
            assert await available(world, f"c{citizen}") == BUDGET_CENTS - paid
        await assert_sound(world)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYMENTS, st.integers(1, 3))
def test_batched_payments_answer_as_if_each_citizen_paid_one_at_a_time(
    seeded_data_dir: Path, payments: list[tuple[int, int, int]], in_flight: int
) -> None:
    asyncio.run(play(seeded_data_dir, payments, in_flight))
