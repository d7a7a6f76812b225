"""Who may see and do what: roles, one's own data only, and no reaching into another municipality."""

from __future__ import annotations

from typing import Any


async def test_requests_without_a_token_are_401_and_public_views_need_none(api: Any) -> None:
    market = await api.market()
    assert (await api.client.get("/v1/me")).status_code == 401
    assert (await api.client.post("/v1/markets", json={})).status_code == 401
    public = await api.client.get("/v1/public/markets", params={"tenant": "71022"})
    assert [m["name"] for m in public.json()] == [market["name"]]


async def test_a_trader_cannot_do_market_master_work(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    trader = api.as_("hasselt.trader")
    for method, path in (
        ("POST", "/v1/markets"),
        ("POST", f"/v1/market-days/{day['id']}/allocations"),
        ("GET", f"/v1/market-days/{day['id']}/applications"),
        ("GET", "/v1/traders"),
        ("POST", f"/v1/market-days/{day['id']}/check-ins"),
    ):
        response = await api.client.request(method, path, json={}, headers=trader)
        assert response.status_code == 403, (method, path)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_trader_never_sees_another_traders_data(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    await api.profile("hasselt.trader")
    await api.profile("hasselt.trader2")
    other = await api.client.post(
        f"/v1/market-days/{day['id']}/applications", json={}, headers=api.as_("hasselt.trader2")
    )
    await api.client.post(
        f"/v1/market-days/{day['id']}/applications", json={}, headers=api.as_("hasselt.trader")
    )
    await api.client.post(
        f"/v1/market-days/{day['id']}/allocations",
        json={"final": True},
        headers=api.as_("hasselt.market_master"),
    )
    me = api.as_("hasselt.trader")
    mine = (await api.client.get("/v1/me/applications", headers=me)).json()
    assert {a["trader_id"] for a in mine} == {(await api.client.get("/v1/me", headers=me)).json()["id"]}
    withdraw = await api.client.delete(f"/v1/me/applications/{other.json()['id']}", headers=me)
    assert withdraw.status_code == 404
    [theirs] = (await api.client.get("/v1/me/market-days", headers=api.as_("hasselt.trader2"))).json()
    code = await api.client.get(f"/v1/me/assignments/{theirs['assignment_id']}/check-in-code", headers=me)
    assert code.status_code == 404
    svg = await api.client.get(f"/v1/me/assignments/{theirs['assignment_id']}/check-in-code.svg", headers=me)
    assert svg.status_code == 404
    [own_day] = (await api.client.get("/v1/me/market-days", headers=me)).json()
    assert own_day["assignment_id"] != theirs["assignment_id"]


async def test_a_hasselt_market_master_cannot_touch_geels_markets(api: Any) -> None:
    geel = await api.market(master="geel.market_master", name="Weekmarkt Geel")
    day = await api.day(geel["id"], master="geel.market_master")
    hasselt = api.as_("hasselt.market_master")
    attempts = (
        ("GET", f"/v1/markets/{geel['id']}", None),
        ("GET", f"/v1/market-days/{day['id']}", None),
        ("PUT", f"/v1/markets/{geel['id']}/plan", geel["plan"]),
        ("POST", f"/v1/markets/{geel['id']}/days", {"start": day["date"], "end": day["date"]}),
        ("GET", f"/v1/markets/{geel['id']}/subscriptions", None),
        ("POST", f"/v1/market-days/{day['id']}/allocations", {"final": True}),
        ("GET", f"/v1/market-days/{day['id']}/allocations", None),
        ("GET", f"/v1/market-days/{day['id']}/attendance", None),
        ("POST", f"/v1/market-days/{day['id']}/invoices", None),
        ("POST", f"/v1/market-days/{day['id']}/cancellation", {"reason": "storm"}),
        ("GET", f"/v1/markets/{geel['id']}/attendance?start={day['date']}&end={day['date']}", None),
    )
    for method, path, body in attempts:
        response = await api.client.request(method, path, json=body, headers=hasselt)
        assert response.status_code == 404, (method, path, response.text)
    own = await api.client.get("/v1/markets", headers=hasselt)
    assert own.json() == []
    assert await api.events("StallsAllocated") == []


async def test_a_geel_trader_cannot_apply_on_a_hasselt_day(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    await api.profile("geel.trader")
    response = await api.client.post(
        f"/v1/market-days/{day['id']}/applications", json={}, headers=api.as_("geel.trader")
    )
    assert response.status_code == 404


async def test_a_trader_without_a_profile_is_told_to_register(api: Any) -> None:
    response = await api.client.get("/v1/me", headers=api.as_("hasselt.trader"))
    assert response.status_code == 404 and "register" in response.json()["detail"]


async def test_a_citizen_cannot_use_trader_pages(api: Any) -> None:
    response = await api.client.get("/v1/me", headers=api.as_("hasselt.citizen"))
    assert response.status_code == 403


async def test_a_trader_decides_whether_to_appear_in_open_data(api: Any) -> None:
    profile = await api.profile("hasselt.trader")
    assert profile["open_data"] is False  # off until the trader says so
    registered = await api.events("TraderRegistered")
    assert registered[-1]["open_data"] is False

    body = {k: profile[k] for k in ("kbo_number", "name", "products", "specialisation")} | {"open_data": True}
    response = await api.client.put("/v1/me", json=body, headers=api.as_("hasselt.trader"))
    assert response.status_code == 200 and response.json()["open_data"] is True
    (updated,) = await api.events("TraderProfileUpdated")
    assert updated["trader_id"] == profile["id"] and updated["open_data"] is True
    assert updated["products"] == profile["products"]
