"""The rule engine issuing coins: limits at window edges, budgets, idempotency, concurrency, tenancy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts import incentives as events
from contracts import mobility_credit
from contracts.envelope import Envelope
from eventbus import tracing
from eventbus.dead_letters import list_dead_letters
from incentives import demo, engine
from incentives.testing import GEEL, Service, running_service, settings_for, trip

SUNDAY_LATE = datetime(2026, 11, 29, 22, 59, 59, tzinfo=UTC)  # 23:59:59 in Geel
MONDAY = datetime(2026, 11, 29, 23, 0, 0, tzinfo=UTC)  # 00:00 in Geel


async def balance(service: Service, username: str, code: str) -> int:
    wallet = await service.call("GET", "/v1/wallet", username)
    return sum(w["balance"] for w in wallet if w["coin_code"] == code)


async def test_the_weekly_limit_holds_up_to_the_last_second_and_resets_at_monday_midnight(
    service: Service,
) -> None:
    for _ in range(5):
        await service.deliver(trip(), time=SUNDAY_LATE)
    assert await balance(service, "geel.citizen", "KEMPEN") == 20
    await service.deliver(trip(), time=MONDAY)
    assert await balance(service, "geel.citizen", "KEMPEN") == 25


async def test_concurrent_trips_never_pass_the_weekly_limit(service: Service) -> None:
    await asyncio.gather(*(service.deliver(trip(), time=MONDAY) for _ in range(12)))
    assert await balance(service, "geel.citizen", "KEMPEN") == 20


async def small_budget_campaign(service: Service, budget: int) -> dict[str, Any]:
    body = {
        "name": "Small",
        "sponsor": "Stad Geel",
        "coin_type_id": str(demo.GEEL_COIN),
        "budget_coins": budget,
        "valid_from": "2026-01-01T00:00:00Z",
        "rules": [
            {
                "trigger": mobility_credit.TripPaid.event_type,
                "beneficiary_field": "citizen_id",
                "reward_coins": 5,
            }
        ],
    }
    campaign: dict[str, Any] = await service.call(
        "POST", "/v1/campaigns", "geel.city_admin", body, status=201
    )
    return campaign


async def test_a_budget_is_never_overspent_the_last_reward_takes_what_is_left(service: Service) -> None:
    await small_budget_campaign(service, 12)
    for _ in range(4):
        await service.deliver(trip(mode="train"))
    assert await balance(service, "geel.citizen", "GEEL") == 12
    [report] = [
        r
        for r in await service.call("GET", "/v1/reports/campaigns", "geel.city_admin")
        if r["name"] == "Small"
    ]
    assert (report["issued"], report["issuances"], report["budget_left"]) == (12, 3, 0)


async def test_a_budget_holds_under_concurrent_events(service: Service) -> None:
    await small_budget_campaign(service, 23)
    citizens = ["geel.citizen", "hasselt.citizen"]
    await asyncio.gather(*(service.deliver(trip(citizens[i % 2], mode="train")) for i in range(10)))
    total = sum([await balance(service, c, "GEEL") for c in citizens])
    assert total == 23


async def test_issuance_is_idempotent_per_event_and_rule_even_without_the_inbox(service: Service) -> None:
    envelope = Envelope.wrap(trip(), source="/cityblocks/test", tenant=GEEL)
    event = trip().model_validate(envelope.data)
    for _ in range(2):
        async with service.context.uow_factory() as uow:
            await engine.on_event(uow, event, envelope)
    assert await balance(service, "geel.citizen", "KEMPEN") == 5


async def test_an_ended_campaign_rewards_nothing(service: Service) -> None:
    campaigns = await service.call("GET", "/v1/campaigns", "geel.city_admin")
    trips = next(c for c in campaigns if c["name"] == "Duurzame verplaatsing")
    await service.call("POST", f"/v1/campaigns/{trips['id']}/end", "geel.city_admin", status=204)
    await service.deliver(trip())
    assert await balance(service, "geel.citizen", "KEMPEN") == 0


async def test_events_from_a_municipality_outside_the_audience_earn_nothing(service: Service) -> None:
    await service.deliver(trip(), tenant="44021")  # Ghent: neither Kempen nor Hasselt
    assert await balance(service, "geel.citizen", "KEMPEN") == 0


async def test_an_event_type_no_rule_wants_records_nothing(service: Service) -> None:
    refunded = mobility_credit.TripRefunded(
        refund_id=trip().trip_id,
        trip_id=trip().trip_id,
        citizen_id="x",
        provider_id=trip().provider_id,
        amount_cents=100,
        refunded_at=datetime.now(UTC),
    )
    await service.deliver(refunded)
    assert await service.call("GET", "/v1/wallet", "geel.citizen") == []


async def test_the_service_subscribes_to_every_other_service_s_events(service: Service) -> None:
    topics = set(service.context.consumer.topics)
    assert {"mobility-credit.trips", "logistics.orders", "probe.records"} <= topics
    assert not any(t.startswith("incentives.") for t in topics)


async def test_a_batch_with_repeats_and_replays_issues_once_per_event_and_rule_within_limit_and_budget(
    service: Service,
) -> None:
    await small_budget_campaign(service, 32)
    envelopes = [Envelope.wrap(trip(), source="/cityblocks/test", tenant=GEEL) for _ in range(7)]
    envelopes = [envelopes[0], *envelopes, envelopes[3]]  # the same event twice in one batch
    await service.context.consumer.deliver_batch(envelopes)
    # Delivered again (a crash before the offset commit), and once more one by one without the inbox.
    await service.context.consumer.deliver_batch(envelopes)
    for envelope in envelopes[:3]:
        async with service.context.uow_factory() as uow:
            await engine.on_event(uow, trip().model_validate(envelope.data), envelope)
    # Seven bus trips: the weekly limit of 20 Kempen coins holds inside one batch; the 32-coin budget too.
    assert await balance(service, "geel.citizen", "KEMPEN") == 20
    assert await balance(service, "geel.citizen", "GEEL") == 32


async def test_a_failing_event_in_a_batch_does_not_hold_back_its_neighbours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = [Envelope.wrap(trip(), source="/cityblocks/test", tenant=GEEL) for _ in range(2)]
    broken = Envelope.wrap(trip(), source="/cityblocks/test", tenant=GEEL)
    issue_many = engine.issue_many

    async def fragile(uow: Any, pending: list[engine.Pending]) -> int:
        if any(p.trigger_id == broken.id for p in pending):
            raise RuntimeError("this event breaks its transaction")
        return await issue_many(uow, pending)

    monkeypatch.setattr(engine, "issue_many", fragile)
    async with running_service(settings_for(tmp_path, consumer_backoff_s=0.01)) as service:
        await service.context.consumer.deliver_batch([good[0], broken, good[1]])
        assert await balance(service, "geel.citizen", "KEMPEN") == 10
        letters = await list_dead_letters(service.context.sessionmaker, consumer="incentives")
        assert [letter.event_id for letter in letters] == [broken.id]


async def test_coins_issued_at_commit_continue_the_trace_of_the_event_that_earned_them(
    service: Service,
) -> None:
    parents = [tracing.new_traceparent() for _ in range(2)]
    envelopes = [
        Envelope.wrap(trip(), source="/cityblocks/test", tenant=GEEL, traceparent=p) for p in parents
    ]
    await service.context.consumer.deliver_batch(envelopes)
    await service.context.relay.drain()
    issued = [r.envelope for r in service.context.bus.records(events.CoinsIssued.topic)]  # type: ignore[attr-defined]
    traces = {e.data["trigger_event_id"]: tracing.trace_id_of(e.traceparent or "-") for e in issued}
    assert traces == {e.id: tracing.trace_id_of(p) for e, p in zip(envelopes, parents, strict=True)}
