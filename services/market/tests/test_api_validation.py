"""Bad input answers 422 problem+json naming the field, and writes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from eventbus.tables import outbox
from market import store


async def _count(api: Any, table: Any) -> int:
    async with api.app.state.context.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _nothing_written(api: Any) -> None:
    for table in (store.markets, store.traders, store.applications, outbox):
        assert await _count(api, table) == 0, table.name


def _loc(response: Any) -> list[Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return list(response.json()["errors"][0]["loc"])


async def _post_market(api: Any, body: dict[str, Any]) -> Any:
    return await api.client.post("/v1/markets", json=body, headers=api.as_("hasselt.market_master"))


async def test_a_malformed_plan_names_the_missing_field(api: Any, market_json: Any) -> None:
    body = market_json()
    del body["plan"]["rows"][1]["stalls"][2]["length_m"]
    assert _loc(await _post_market(api, body)) == ["body", "plan", "rows", 1, "stalls", 2, "length_m"]
    await _nothing_written(api)


async def test_overlapping_stalls_are_refused_naming_the_stall(api: Any, market_json: Any) -> None:
    body = market_json()
    row = body["plan"]["rows"][1]["stalls"]
    row[2]["lon"] = row[1]["lon"] + (row[2]["lon"] - row[1]["lon"]) / 2  # B3 starts halfway along B2
    response = await _post_market(api, body)
    assert _loc(response) == ["body", "plan", "rows", 1, "stalls", 2]
    assert "overlaps" in response.json()["detail"]
    await _nothing_written(api)


async def test_two_stalls_with_one_number_are_refused(api: Any, market_json: Any) -> None:
    body = market_json()
    body["plan"]["rows"][1]["stalls"][3]["number"] = "A1"
    assert _loc(await _post_market(api, body)) == ["body", "plan", "rows", 1, "stalls", 3, "number"]
    await _nothing_written(api)


async def test_an_obstacle_after_an_unknown_stall_is_refused(api: Any, market_json: Any) -> None:
    body = market_json()
    body["plan"]["rows"][0]["obstacles_after"] = ["Z9"]
    assert _loc(await _post_market(api, body)) == ["body", "plan", "rows", 0, "obstacles_after", 0]
    await _nothing_written(api)


async def test_an_unknown_stall_in_a_preference_is_refused(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    await api.profile("hasselt.trader")
    before = await _count(api, outbox)
    response = await api.client.post(
        f"/v1/market-days/{day['id']}/applications",
        json={"preferred_stalls": ["A1", "Q7"]},
        headers=api.as_("hasselt.trader"),
    )
    assert _loc(response) == ["body", "preferred_stalls", 1]
    assert await _count(api, store.applications) == 0 and await _count(api, outbox) == before


async def test_more_stalls_than_the_regulation_allows_is_refused(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    await api.profile("hasselt.trader")
    response = await api.client.post(
        f"/v1/market-days/{day['id']}/applications",
        json={"min_stalls": 2, "max_stalls": 5},
        headers=api.as_("hasselt.trader"),
    )
    assert _loc(response) == ["body", "max_stalls"]


async def test_an_invalid_kbo_number_is_refused(api: Any) -> None:
    body = {"kbo_number": "0123.456.789", "name": "Frituur Fout"}
    response = await api.client.put("/v1/me", json=body, headers=api.as_("hasselt.trader"))
    assert _loc(response) == ["body", "kbo_number"]
    assert "mod 97" in response.json()["detail"]
    by_master = await api.client.post("/v1/traders", json=body, headers=api.as_("hasselt.market_master"))
    assert _loc(by_master) == ["body", "kbo_number"]
    await _nothing_written(api)


async def test_a_market_closing_before_it_opens_is_refused(api: Any, market_json: Any) -> None:
    assert _loc(await _post_market(api, market_json(closes="07:00"))) == ["body", "closes"]
    await _nothing_written(api)


async def test_a_forged_check_in_code_is_refused(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    response = await api.client.post(
        f"/v1/market-days/{day['id']}/check-ins",
        json={"token": "cbm1.eyJhIjoiMSJ9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        headers=api.as_("hasselt.market_master"),
    )
    assert _loc(response) == ["body", "token"]


async def test_a_subscription_on_an_unknown_stall_is_refused(api: Any) -> None:
    market = await api.market()
    trader = await api.trader()
    response = await api.client.post(
        f"/v1/markets/{market['id']}/subscriptions",
        json={"trader_id": trader["id"], "stalls": ["A1", "X1"], "granted_on": "2024-01-01"},
        headers=api.as_("hasselt.market_master"),
    )
    assert _loc(response) == ["body", "stalls", 1]
