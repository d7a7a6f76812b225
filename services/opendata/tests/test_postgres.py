"""Open-data projections, datasets and stream on PostgreSQL, the schema made by the migrations."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from opendata import testing as events
from opendata.app import create_app
from opendata.testing import HASSELT, OpenData, settings_for

pytestmark = pytest.mark.postgres


async def test_every_dataset_and_the_stream_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, database_url=postgres_url, migrate_on_start=True, create_tables=False, stream_page_size=2
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://opendata.test") as client:
            opendata = OpenData(app, client, settings)
            agreed = events.trader("Kaashoeve Peeters", open_data=True)
            day = events.market_day()
            launched = events.campaign()
            envelopes = await opendata.publish(
                agreed,
                day,
                events.allocation(day, (agreed, "1")),
                events.delivery(uuid.uuid4(), "cargo_bike", ["Centrum"]),
                *[events.trip(f"c{n}") for n in range(12)],
                events.market_day(),
                events.market_day(),
            )
            await opendata.publish(
                launched, *[events.issued(launched, f"c{n}") for n in range(10)], tenant="13008"
            )
            await opendata.redeliver(*envelopes)  # everything again: counted once

            base = f"/v1/public/{HASSELT}/datasets"
            stalls = (await opendata.json(f"{base}/market-stalls.jsonld"))["@graph"]
            assert [(s["stall_number"], s["trader_name"]) for s in stalls] == [("1", "Kaashoeve Peeters")]
            (trips,) = (await opendata.json(f"{base}/mobility-credit-use.jsonld"))["@graph"]
            assert (trips["trips"], trips["citizens"], trips["district"]) == (12, 12, "Hasselt-Centrum")
            deliveries = (await opendata.json(f"{base}/deliveries.jsonld"))["@graph"]
            assert {d["zone"] for d in deliveries} == {"*", "Centrum"}
            (issued,) = (await opendata.json("/v1/public/13008/datasets/campaign-results.jsonld"))["@graph"]
            assert (issued["coins"], issued["citizens"]) == (50, 10)

            first = await client.get(f"/v1/public/{HASSELT}/stream/pages/0")
            second = await client.get(f"/v1/public/{HASSELT}/stream/pages/1")
            assert first.headers["cache-control"].endswith("immutable")
            members = first.json()["tree:member"] + second.json()["tree:member"]
            assert len(members) == 3  # three market days scheduled, once each
