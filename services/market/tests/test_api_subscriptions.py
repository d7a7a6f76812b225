"""Subscription places through the API: candidate register, notice periods, absent holders."""

from __future__ import annotations

from typing import Any


async def test_the_candidate_register_orders_by_priority_group_then_date(api: Any) -> None:
    market = await api.market()
    master = api.as_("hasselt.market_master")
    early = await api.trader(name="Vis Extern Vroeg")
    late_extension = await api.trader(name="Vis Uitbreiding")
    displaced = await api.trader(name="Vis Verplaatst")
    for trader, group, on in (
        (early, 4, "2019-01-01"),
        (late_extension, 2, "2024-05-01"),
        (displaced, 1, "2025-01-01"),
    ):
        response = await api.client.post(
            f"/v1/markets/{market['id']}/candidates",
            json={"trader_id": trader["id"], "priority_group": group, "registered_on": on},
            headers=master,
        )
        assert response.status_code == 201, response.text
    register = await api.client.get(
        f"/v1/markets/{market['id']}/candidates", params={"specialisation": "vis"}, headers=master
    )
    assert [(c["position"], c["trader_name"]) for c in register.json()] == [
        (1, "Vis Verplaatst"),
        (2, "Vis Uitbreiding"),
        (3, "Vis Extern Vroeg"),
    ]
    others = await api.client.get(
        f"/v1/markets/{market['id']}/candidates", params={"specialisation": "kaas"}, headers=master
    )
    assert others.json() == []


async def test_abolishing_a_place_needs_twelve_months_notice(api: Any) -> None:
    market = await api.market()
    master = api.as_("hasselt.market_master")
    holder = await api.trader()
    sub = await api.client.post(
        f"/v1/markets/{market['id']}/subscriptions",
        json={"trader_id": holder["id"], "stalls": ["B1"], "granted_on": "2020-01-01"},
        headers=master,
    )
    short = await api.client.post(
        f"/v1/subscriptions/{sub.json()['id']}/end",
        json={"ends_on": "2026-06-01", "reason": "place_abolished", "announced_on": "2026-01-01"},
        headers=master,
    )
    assert short.status_code == 422 and short.json()["errors"][0]["loc"] == ["body", "effective_on"]
    ok = await api.client.post(
        f"/v1/subscriptions/{sub.json()['id']}/end",
        json={"ends_on": "2027-01-01", "reason": "place_abolished", "announced_on": "2026-01-01"},
        headers=master,
    )
    assert ok.status_code == 200 and ok.json()["ends_on"] == "2027-01-01"
    assert [e["reason"] for e in await api.events("SubscriptionEnded")] == ["place_abolished"]


async def test_an_absent_holders_stall_goes_to_an_applicant(api: Any) -> None:
    market = await api.market()
    master = api.as_("hasselt.market_master")
    holder = await api.trader(name="Kaas Bollen", specialisation="kaas", products=["kaas"])
    await api.client.post(
        f"/v1/markets/{market['id']}/subscriptions",
        json={"trader_id": holder["id"], "stalls": ["A1"], "granted_on": "2020-01-01"},
        headers=master,
    )
    day = await api.day(market["id"])
    absent = await api.client.post(
        f"/v1/traders/{holder['id']}/absences",
        json={"starts": day["date"], "ends": day["date"]},
        headers=master,
    )
    assert absent.status_code == 204
    me = await api.profile("hasselt.trader")
    await api.client.post(
        f"/v1/market-days/{day['id']}/applications",
        json={"preferred_stalls": ["A1"], "anywhere": False},
        headers=api.as_("hasselt.trader"),
    )
    result = await api.client.post(
        f"/v1/market-days/{day['id']}/allocations", json={"final": True}, headers=master
    )
    assert {a["trader_id"]: a["stalls"] for a in result.json()["assignments"]} == {me["id"]: ["A1"]}
