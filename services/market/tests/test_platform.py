"""The embedded platform mounts the market at /market with the demo municipalities' markets seeded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityblocks.embedded import build_platform, load_specs
from eventbus.tables import outbox
from market import store
from market.app import SPEC


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = build_platform(tmp_path, specs=[SPEC])
    market_app = app.state.services[0].app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield client, market_app
        await _relay_idle(market_app)


async def _relay_idle(app: Any) -> None:
    # Shutting down while the relay is mid-transaction can hang on SQLite; let it go idle first.
    for _ in range(250):
        async with app.state.context.sessionmaker() as session:
            unsent = await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
        if not unsent:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)


async def _login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/auth/token", data={"username": username})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_the_runners_list_the_market_service() -> None:
    assert SPEC in load_specs()


async def test_the_platform_serves_the_hasselt_markets_from_demo_data(
    platform: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, _ = platform
    assert (await client.get("/market/ready")).status_code == 200
    hasselt = (await client.get("/market/v1/public/markets", params={"tenant": "71022"})).json()
    assert {(m["name"], m["place"]["name"]) for m in hasselt} == {
        ("Dinsdagmarkt", "Kolonel Dusartplein"),
        ("Vrijdagmarkt", "Kolonel Dusartplein"),
    }
    assert all(140 <= m["stall_count"] <= 160 for m in hasselt)
    geel = (await client.get("/market/v1/public/markets", params={"tenant": "13008"})).json()
    assert [m["place"]["address"] for m in geel] == ["Markt, 2440 Geel"]


async def test_demo_trader_applies_market_master_allocates_trader_sees_stall_and_reason(
    platform: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, _ = platform
    trader = await _login(client, "hasselt.trader")
    master = await _login(client, "hasselt.market_master")
    markets = (await client.get("/market/v1/markets", headers=trader)).json()
    tuesday = next(m for m in markets if m["name"] == "Dinsdagmarkt")
    day = (await client.get(f"/market/v1/markets/{tuesday['id']}/days", headers=trader)).json()[0]

    applied = await client.post(
        f"/market/v1/market-days/{day['id']}/applications",
        json={"min_stalls": 1, "max_stalls": 2, "preferred_stalls": ["J1", "J2"]},
        headers=trader,
    )
    assert applied.status_code == 201, applied.text
    allocation = await client.post(
        f"/market/v1/market-days/{day['id']}/allocations", json={"final": True, "seed": 2026}, headers=master
    )
    assert allocation.status_code == 201, allocation.text
    result = allocation.json()
    present = {a["trader_id"] for a in result["assignments"]} | {r["trader_id"] for r in result["rejections"]}
    assert len(present) > 100 and result["seed"] == 2026

    [mine] = (await client.get("/market/v1/me/market-days", headers=trader)).json()
    assert mine["status"] == "assigned" and mine["stalls"] and mine["explanation"]
    assert mine["explanation"].startswith("Placed on")
    rejected = result["rejections"][0]
    assert rejected["reason_code"] and rejected["reason_text"] and rejected["explanation"]


async def test_demo_data_is_seeded_once_across_restarts(tmp_path: Path) -> None:
    for _ in range(2):
        app = build_platform(tmp_path, specs=[SPEC])
        market_app = app.state.services[0].app
        async with app.router.lifespan_context(app):
            async with market_app.state.context.sessionmaker() as session:
                counts = [
                    await session.scalar(select(func.count()).select_from(table))
                    for table in (store.markets, store.traders, store.subscriptions, store.applications)
                ]
            await _relay_idle(market_app)
        assert counts[:2] == [3, 240]
    hasselt_holders = counts[2]
    assert 100 < hasselt_holders < 200
