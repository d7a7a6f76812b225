"""Across services: the running platform publishes open data built from the other services' events."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import rdflib
from fastapi import FastAPI
from rdflib.namespace import DCAT, RDF

from cityblocks.embedded import build_platform
from market.app import SPEC as MARKET
from mobility_credit.app import SPEC as MOBILITY_CREDIT
from opendata.app import SPEC as OPENDATA


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = build_platform(tmp_path, specs=[MARKET, MOBILITY_CREDIT, OPENDATA])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield client
        await asyncio.sleep(0.1)


async def eventually_rows(client: httpx.AsyncClient, path: str) -> list[dict[str, str]]:
    for _ in range(150):  # within the public rate limit
        response = await client.get(path)
        assert response.status_code == 200, response.text
        rows = list(csv.DictReader(io.StringIO(response.text)))
        if rows:
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} stayed empty")


async def test_the_market_demo_day_is_open_data_with_only_consenting_traders(
    client: httpx.AsyncClient,
) -> None:
    master = {"Authorization": f"Bearer {await token(client, 'hasselt.market_master')}"}
    markets = (await client.get("/market/v1/markets", headers=master)).json()
    for market in markets:
        days = (await client.get(f"/market/v1/markets/{market['id']}/days", headers=master)).json()
        applied = (
            await client.get(f"/market/v1/market-days/{days[0]['id']}/applications", headers=master)
        ).json()
        if applied:
            break
    body = {"final": True, "seed": 7, "time_limit_s": 5}
    allocated = await client.post(
        f"/market/v1/market-days/{days[0]['id']}/allocations", json=body, headers=master
    )
    assert allocated.status_code == 201, allocated.text

    rows = await eventually_rows(client, "/opendata/v1/public/71022/datasets/market-stalls.csv")
    traders = {t["id"]: t for t in (await client.get("/market/v1/traders", headers=master)).json()}
    holder_of = {stall: a["trader_id"] for a in allocated.json()["assignments"] for stall in a["stalls"]}
    assert {row["stall_number"] for row in rows} == set(holder_of)
    for row in rows:
        trader = traders[holder_of[row["stall_number"]]]
        if trader["open_data"]:
            assert row["trader_name"] == trader["name"] and row["products"] == "; ".join(trader["products"])
        else:  # the stall is published, the trader is not
            assert row["trader_name"] == "" and row["products"] == "" and row["specialisation"] == ""
    consents = {traders[holder_of[row["stall_number"]]]["open_data"] for row in rows}
    assert consents == {True, False}  # the demo has traders on both sides of the choice


async def test_a_paid_trip_reaches_the_open_data_only_as_a_suppressed_group(
    client: httpx.AsyncClient,
) -> None:
    provider = {"Authorization": f"Bearer {await token(client, 'hasselt.provider')}"}
    providers = (await client.get("/mobility-credit/v1/providers", headers=provider)).json()
    bus = next(p for p in providers if "bus" in p["modes"])
    users = (await client.get("/auth/users")).json()
    trip = {
        "citizen_id": next(u["subject"] for u in users if u["username"] == "hasselt.citizen"),
        "mode": "bus",
        "place": {"name": "Hasselt Station", "lat": 50.9296, "lon": 5.3277},
        "consumed_at": datetime.now(UTC).isoformat(),
        "total_cents": 300,
    }
    paid = await client.post(
        f"/mobility-credit/v1/providers/{bus['id']}/trips",
        json=trip,
        headers={**provider, "Idempotency-Key": "t-1"},
    )
    assert paid.status_code in (200, 201), paid.text

    rows = await eventually_rows(client, "/opendata/v1/public/71022/datasets/mobility-credit-use.csv")
    bus_rows = [row for row in rows if row["mode"] == "bus"]
    assert bus_rows and all(row["suppressed"] == "true" and row["trips"] == "" for row in bus_rows)


async def test_the_catalogue_links_resolve_on_the_running_platform(client: httpx.AsyncClient) -> None:
    response = await client.get("/opendata/v1/public/71022/catalog")
    graph = rdflib.Graph().parse(data=json.dumps(response.json()), format="json-ld")
    urls = [str(url) for url in graph.objects(None, DCAT.accessURL)]
    assert urls and all(url.startswith("http://platform/opendata/v1/public/71022/") for url in urls)
    for url in urls:
        assert (await client.get(url)).status_code == 200, url
    assert len(list(graph.subjects(RDF.type, DCAT.Dataset))) == 5


async def token(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post("/auth/token", data={"username": username})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
