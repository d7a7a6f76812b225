"""The public event stream: only public events, in order, once each, in pages that never change once full."""

from __future__ import annotations

from pathlib import Path

import httpx
from pyld import jsonld

from opendata import testing as events
from opendata.app import create_app
from opendata.testing import HASSELT, OpenData, settings_for

STREAM = f"/v1/public/{HASSELT}/stream"


async def test_public_events_form_immutable_pages_in_order(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, stream_page_size=3))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://opendata.test") as client:
            opendata = OpenData(app, client, app.state.context.settings)
            days = [events.market_day() for _ in range(4)]
            private = events.trip("citizen-1")  # not a public event: never in the stream
            envelopes = await opendata.publish(days[0], private, *days[1:])
            await opendata.redeliver(envelopes[0])  # a redelivered event keeps its one place

            root = await opendata.json(STREAM)
            assert root["@type"] == "ldes:EventStream" and root["tree:view"]["@id"].endswith(
                "/stream/pages/0"
            )

            first = await client.get(f"{STREAM}/pages/0")
            assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
            page = first.json()
            subjects = [member["market_day_id"] for member in page["tree:member"]]
            positions = [
                member["https://w3id.org/cityblocks/ns#streamPosition"] for member in page["tree:member"]
            ]
            assert positions == [0, 1, 2] and len(set(subjects)) == 3
            (relation,) = page["tree:view"]["tree:relation"]
            assert relation["tree:node"]["@id"].endswith("/stream/pages/1")

            second = await client.get(f"{STREAM}/pages/1")
            assert second.headers["cache-control"] == "public, max-age=10"  # still filling
            later = [m["market_day_id"] for m in second.json()["tree:member"]]
            # every public event once, in the order this service received them (partitions interleave)
            assert sorted(subjects + later) == sorted(str(day.market_day_id) for day in days)
            assert "tree:relation" not in second.json()["tree:view"]
            assert (await client.get(f"{STREAM}/pages/2")).status_code == 404

            await opendata.publish(*[events.market_day() for _ in range(3)])
            again = await client.get(f"{STREAM}/pages/0")
            assert again.content == first.content  # a full page never changes

            member_id = page["tree:member"][0]["@id"]
            member = await client.get(member_id)
            assert member.status_code == 200 and member.json()["market_day_id"] == subjects[0]


async def test_members_are_linked_data_with_time_and_version(opendata: OpenData) -> None:
    day = events.market_day()
    await opendata.publish(day)
    page = await opendata.json(f"{STREAM}/pages/0")
    (member,) = jsonld.expand(page)[0]["https://w3id.org/tree#member"]
    assert member["http://purl.org/dc/terms/isVersionOf"] == [{"@id": f"urn:uuid:{day.market_day_id}"}]
    assert member["http://www.w3.org/ns/prov#generatedAtTime"][0]["@type"].endswith("#dateTime")
    assert any(key.startswith("https://data.vlaanderen.be/ns/") for key in member)


async def test_another_municipality_has_its_own_stream(opendata: OpenData) -> None:
    await opendata.publish(events.campaign(), tenant="13008")
    hasselt = await opendata.json(f"{STREAM}/pages/0")
    geel = await opendata.json("/v1/public/13008/stream/pages/0")
    assert hasselt["tree:member"] == [] and len(geel["tree:member"]) == 1
