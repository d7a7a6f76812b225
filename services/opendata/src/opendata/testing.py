"""Test helpers: the service in-process (events in through its bus, datasets out of its API), and events as
the other services publish them, with only what a test cares about to fill in."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from contracts import incentives, logistics, market, mobility_credit
from contracts.base import Event
from contracts.envelope import Envelope
from opendata.settings import Settings
from servicekit.devidp import DevIdentityProvider, demo_user

HASSELT = "71022"


@dataclass
class OpenData:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    async def publish(self, *events: Event, tenant: str = HASSELT) -> list[Envelope]:
        """Publish events as their services would and wait until this service has consumed them."""
        envelopes = [
            Envelope.wrap(event, source=f"/{event.event_service}", tenant=tenant) for event in events
        ]
        await self.redeliver(*envelopes)
        return envelopes

    async def redeliver(self, *envelopes: Envelope) -> None:
        bus = self.app.state.context.bus
        await bus.publish(list(envelopes))
        for _ in range(500):
            if not any((await bus.lag()).values()):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"events not consumed: {await bus.lag()}")

    def headers(self, username: str) -> dict[str, str]:
        token = DevIdentityProvider.from_settings(self.settings).issue(demo_user(username))
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def json(self, path: str, **kwargs: Any) -> Any:
        response = await self.client.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": data_dir, "log_level": "WARNING", "demo_data": True} | overrides
    return Settings(**values)


NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CENTRE = (50.9305, 5.3378)
STATION = (50.9296, 5.3277)


def trader(name: str, *, open_data: bool, products: list[str] | None = None) -> market.TraderRegistered:
    return market.TraderRegistered(
        trader_id=uuid.uuid4(),
        kbo_number="0123456749",
        name=name,
        products=products or ["kaas", "eieren"],
        specialisation="zuivel",
        registered_at=NOW,
        open_data=open_data,
    )


PLACE = market.MarketPlace(
    name="Kolonel Dusartplein", address="Kolonel Dusartplein, 3500 Hasselt", lat=50.9312, lon=5.3385
)


def market_day(day: date = date(2026, 11, 24)) -> market.MarketDayScheduled:
    opens = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=7)
    return market.MarketDayScheduled(
        market_day_id=uuid.uuid4(),
        market_id=uuid.uuid4(),
        market_name="Dinsdagmarkt",
        market_date=day,
        place=PLACE,
        opens_at=opens,
        closes_at=opens + timedelta(hours=6),
        setup_starts_at=opens - timedelta(hours=1),
        setup_ends_at=opens,
        release_at=opens,
        scheduled_at=NOW,
    )


def allocation(
    day: market.MarketDayScheduled, *traders: tuple[market.TraderRegistered, str]
) -> market.StallsAllocated:
    assignments = [
        market.StallAssignment(
            trader_id=t.trader_id,
            kbo_number=t.kbo_number,
            trader_name=t.name,
            stall_numbers=[number],
            row="A",
            lat=50.9312,
            lon=5.3385,
            stalls=[market.AssignedStall(number=number, row="A", lat=50.9312, lon=5.3385, length_cm=400)],
            holder=False,
        )
        for t, number in traders
    ]
    return market.StallsAllocated(
        allocation_id=uuid.uuid4(),
        market_day_id=day.market_day_id,
        market_id=day.market_id,
        market_name=day.market_name,
        market_date=day.market_date,
        place=day.place,
        setup_starts_at=day.setup_starts_at,
        setup_ends_at=day.setup_ends_at,
        opens_at=day.opens_at,
        closes_at=day.closes_at,
        round="first",
        method="seeded_lottery",
        seed=7,
        solver="cp-sat",
        optimal=True,
        assignments=assignments,
        rejections=[],
        allocated_at=NOW,
    )


def trip(
    citizen: str, mode: Any = "bus", at: tuple[float, float] = CENTRE, cents: int = 200
) -> mobility_credit.TripPaid:
    return mobility_credit.TripPaid(
        trip_id=uuid.uuid4(),
        citizen_id=citizen,
        provider_id=uuid.uuid4(),
        provider_name="De Lijn",
        scheme_id=uuid.uuid4(),
        mode=mode,
        place=mobility_credit.Place(name="Hasselt", lat=at[0], lon=at[1]),
        consumed_at=NOW,
        total_cents=cents,
        city_share_cents=cents,
        citizen_share_cents=0,
        paid_at=NOW,
    )


def delivery(
    route: uuid.UUID, kind: Any, zones: list[str], distance_m: int = 12_000
) -> logistics.StopCompleted:
    return logistics.StopCompleted(
        order_id=uuid.uuid4(),
        route_id=route,
        vehicle_id=uuid.uuid4(),
        vehicle_kind=kind,
        stop_kind="delivery",
        shipper_id="0123456749",
        recipient=logistics.Recipient(kind="shop", name="Winkel"),
        weight_kg=10,
        distance_m=distance_m,
        completed_at=NOW,
        zones=zones,
    )


def campaign(name: str = "Duurzame verplaatsing") -> incentives.CampaignLaunched:
    return incentives.CampaignLaunched(
        campaign_id=uuid.uuid4(),
        name=name,
        issuer_tenant="13008",
        sponsor="Stad Geel",
        coin_type_id=uuid.uuid4(),
        coin_code="GEEL",
        budget_coins=10_000,
        triggers=["be.cityblocks.mobility-credit.TripPaid.v1"],
        conditions=["mode == 'bus'"],
        reward_kind="fixed",
        valid_from=NOW,
        launched_at=NOW,
    )


def issued(
    launched: incentives.CampaignLaunched, beneficiary: str, amount: int = 5, kind: Any = "citizen"
) -> incentives.CoinsIssued:
    return incentives.CoinsIssued(
        issuance_id=uuid.uuid4(),
        campaign_id=launched.campaign_id,
        rule_id=uuid.uuid4(),
        coin_type_id=launched.coin_type_id,
        coin_code=launched.coin_code,
        beneficiary_kind=kind,
        beneficiary_id=beneficiary,
        amount=amount,
        trigger_event_id=str(uuid.uuid4()),
        trigger_event_type="be.cityblocks.mobility-credit.TripPaid.v1",
        issued_at=NOW,
    )


def redeemed(coin_code: str, wallet: uuid.UUID, amount: int = 3) -> incentives.CoinsRedeemed:
    return incentives.CoinsRedeemed(
        redemption_id=uuid.uuid4(),
        wallet_id=wallet,
        coin_type_id=uuid.uuid4(),
        coin_code=coin_code,
        merchant_id=uuid.uuid4(),
        amount=amount,
        redeemed_at=NOW,
    )
