"""The open datasets through the API: content, suppression, consent, formats; bad requests get problems."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from pyld import jsonld

from contracts import incentives, market
from opendata import testing as events
from opendata.datasets import BY_ID
from opendata.testing import HASSELT, OpenData

BASE = f"/v1/public/{HASSELT}/datasets"


async def csv_rows(opendata: OpenData, dataset: str) -> list[dict[str, str]]:
    response = await opendata.get(f"{BASE}/{dataset}.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def graph(opendata: OpenData, dataset: str) -> list[dict[str, Any]]:
    response = await opendata.get(f"{BASE}/{dataset}.jsonld")
    assert response.status_code == 200 and response.headers["content-type"] == "application/ld+json"
    return list(response.json()["@graph"])


async def test_mobility_credit_use_never_shows_a_group_of_fewer_than_ten_citizens(opendata: OpenData) -> None:
    ten_on_the_bus = [events.trip(f"citizen-{n}", "bus") for n in range(10)]
    nine_on_bikes = [events.trip(f"citizen-{n}", "shared_bike") for n in range(9)]
    twice = events.trip("citizen-0", "bus")  # a second trip of the same citizen: still ten people
    envelopes = await opendata.publish(*ten_on_the_bus, *nine_on_bikes, twice)
    await opendata.redeliver(*envelopes[:3])  # redelivered events count once

    rows = {row["mode"]: row for row in await csv_rows(opendata, "mobility-credit-use")}
    assert rows["bus"]["district"] == "Hasselt-Centrum"
    assert (rows["bus"]["trips"], rows["bus"]["citizens"], rows["bus"]["city_share_eur"]) == (
        "11",
        "10",
        "22.0",
    )
    assert rows["bus"]["suppressed"] == "false"
    bikes = rows["shared_bike"]
    assert bikes["suppressed"] == "true"
    assert (bikes["trips"], bikes["citizens"], bikes["city_share_eur"]) == ("", "", "")  # empty, not 0

    nodes = {node["mode"]: node for node in await graph(opendata, "mobility-credit-use")}
    assert nodes["bus"]["citizens"] == 10
    assert "trips" not in nodes["shared_bike"] and nodes["shared_bike"]["suppressed"] is True


async def test_a_trip_outside_every_district_is_counted_as_unknown(opendata: OpenData) -> None:
    await opendata.publish(*[events.trip(f"c{n}", "train", at=(51.5, 4.0)) for n in range(10)])
    (row,) = await csv_rows(opendata, "mobility-credit-use")
    assert row["district"] == "onbekend" and row["citizens"] == "10"


async def test_market_stalls_name_only_traders_who_agreed(opendata: OpenData) -> None:
    agreed = events.trader("Kaashoeve Peeters", open_data=True)
    private = events.trader("Jan Janssens", open_data=False, products=["groenten"])
    day = events.market_day()
    await opendata.publish(agreed, private, day, events.allocation(day, (agreed, "1"), (private, "2")))

    rows = {row["stall_number"]: row for row in await csv_rows(opendata, "market-stalls")}
    assert rows["1"]["trader_name"] == "Kaashoeve Peeters" and rows["1"]["products"] == "kaas; eieren"
    assert (
        rows["2"]["trader_name"] == "" and rows["2"]["products"] == ""
    )  # the stall is shown, not the person
    assert rows["2"]["market_name"] == "Dinsdagmarkt" and rows["2"]["length_m"] == "4.0"

    changed = market.TraderProfileUpdated(
        trader_id=private.trader_id,
        name=private.name,
        products=["groenten"],
        open_data=True,
        updated_at=events.NOW,
    )
    released = market.StallReleased(
        market_day_id=day.market_day_id,
        market_id=day.market_id,
        trader_id=agreed.trader_id,
        stall_numbers=["1"],
        reason="no_show",
        released_at=events.NOW,
    )
    await opendata.publish(changed, released)
    rows = {row["stall_number"]: row for row in await csv_rows(opendata, "market-stalls")}
    assert set(rows) == {"2"} and rows["2"]["trader_name"] == "Jan Janssens"


async def test_a_cancelled_market_day_has_no_stalls(opendata: OpenData) -> None:
    agreed = events.trader("Kaashoeve Peeters", open_data=True)
    day = events.market_day()
    cancelled = market.MarketDayCancelled(
        market_day_id=day.market_day_id,
        market_id=day.market_id,
        market_date=day.market_date,
        reason="kermis",
        cancelled_at=events.NOW,
    )
    await opendata.publish(agreed, day, events.allocation(day, (agreed, "1")), cancelled)
    assert await csv_rows(opendata, "market-stalls") == []


async def test_deliveries_per_zone_and_day(opendata: OpenData) -> None:
    bike_route, van_route = uuid.uuid4(), uuid.uuid4()
    ring = "Binnen de Groene Boulevard"
    await opendata.publish(
        events.delivery(bike_route, "cargo_bike", [ring], 8_000),
        events.delivery(bike_route, "cargo_bike", [ring], 8_000),
        events.delivery(van_route, "van", [ring], 30_000),
        events.delivery(van_route, "van", [], 30_000),
    )
    rows = {row["zone"]: row for row in await csv_rows(opendata, "deliveries")}
    assert rows["*"] == {
        "day": "2026-11-20",
        "zone": "*",
        "deliveries": "4",
        "trips": "2",
        "km": "38.0",
        "cargo_bike_share": "0.5",
    }
    assert (rows[ring]["deliveries"], rows[ring]["trips"], rows[ring]["cargo_bike_share"]) == (
        "3",
        "2",
        "0.667",
    )


async def test_campaign_results_per_campaign_and_coin(opendata: OpenData) -> None:
    launched = events.campaign()
    citizens = [events.issued(launched, f"citizen-{n}") for n in range(12)]
    shops = [events.issued(launched, "merchant-1", 20, kind="merchant")]
    wallets = [events.redeemed("GEEL", uuid.uuid4()) for _ in range(4)]
    await opendata.publish(launched, *citizens, *wallets, tenant="13008")
    await opendata.publish(*shops, tenant="13008")

    response = await opendata.get("/v1/public/13008/datasets/campaign-results.csv")
    rows = {row["measure"]: row for row in csv.DictReader(io.StringIO(response.text))}
    issued = rows["issued"]
    assert issued["campaign_name"] == "Duurzame verplaatsing" and issued["sponsor"] == "Stad Geel"
    assert (issued["coins"], issued["movements"], issued["citizens"]) == ("80", "13", "12")
    assert rows["redeemed"]["suppressed"] == "true" and rows["redeemed"]["coins"] == ""  # 4 wallets only


async def test_expired_coins_are_counted_per_coin(opendata: OpenData) -> None:
    expired = [
        incentives.CoinsExpired(
            expiry_id=uuid.uuid4(),
            wallet_id=uuid.uuid4(),
            citizen_id=f"citizen-{n}",
            coin_type_id=uuid.uuid4(),
            coin_code="KEMPEN",
            amount=2,
            expired_at=events.NOW,
        )
        for n in range(10)
    ]
    await opendata.publish(*expired, tenant="13008")
    response = await opendata.get("/v1/public/13008/datasets/campaign-results.csv")
    (row,) = csv.DictReader(io.StringIO(response.text))
    assert (row["measure"], row["coin_code"]) == ("expired", "KEMPEN")
    assert (row["coins"], row["citizens"]) == ("20", "10")


async def test_every_dataset_expands_to_linked_data_with_every_column_mapped(opendata: OpenData) -> None:
    agreed = events.trader("Kaashoeve Peeters", open_data=True)
    day = events.market_day()
    launched = events.campaign()
    await opendata.publish(
        agreed,
        day,
        events.allocation(day, (agreed, "1")),
        events.delivery(uuid.uuid4(), "cargo_bike", ["Centrum"]),
        *[events.trip(f"c{n}") for n in range(10)],
        launched,
        *[events.issued(launched, f"c{n}") for n in range(10)],
    )
    for dataset in BY_ID:
        document = (await opendata.get(f"{BASE}/{dataset}.jsonld")).json()
        assert document["@graph"], dataset
        (named_graph,) = jsonld.expand(document)  # the dataset: licence, catalogue, and its rows as a graph
        assert "http://purl.org/dc/terms/license" in named_graph
        nodes = {node["@id"]: node for node in named_graph["@graph"]}
        rows = document["@graph"]
        assert len(nodes) == len(rows)
        for row in rows:
            node = nodes[row["@id"]]
            fields = [key for key in row if not key.startswith("@")]
            properties = [key for key in node if not key.startswith("@")]
            assert len(properties) == len(fields), (dataset, sorted(fields), sorted(properties))
            assert all(key.startswith(("http://", "https://")) for key in properties)


async def test_content_negotiation_and_caching(opendata: OpenData) -> None:
    await opendata.publish(*[events.trip(f"c{n}") for n in range(10)])
    as_csv = await opendata.get(f"{BASE}/mobility-credit-use", headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    as_jsonld = await opendata.get(f"{BASE}/mobility-credit-use")
    assert as_jsonld.headers["content-type"] == "application/ld+json"
    again = await opendata.get(
        f"{BASE}/mobility-credit-use", headers={"If-None-Match": as_jsonld.headers["etag"]}
    )
    assert again.status_code == 304


async def test_unknown_municipality_dataset_or_format_is_a_problem(opendata: OpenData) -> None:
    for path in (
        "/v1/public/99999/datasets/deliveries.csv",
        f"{BASE}/nope.csv",
        f"{BASE}/deliveries.xlsx",
        "/v1/public/contexts/nope.jsonld",
    ):
        response = await opendata.get(path)
        assert response.status_code in (404, 422), (path, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
