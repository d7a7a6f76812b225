"""A market day through the API: apply, concept and final allocation, check-in by QR code, release, fees."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from market import store
from market.allocation import allocate
from market.handlers import allocating


async def _allocated_day(api: Any) -> dict[str, Any]:
    """Market with a fish holder on B2, a trader applying for A1, and a final allocation."""
    market = await api.market()
    holder = await api.trader(name="Viswinkel Maes")
    grant = await api.client.post(
        f"/v1/markets/{market['id']}/subscriptions",
        json={"trader_id": holder["id"], "stalls": ["B2"], "granted_on": "2020-03-01"},
        headers=api.as_("hasselt.market_master"),
    )
    assert grant.status_code == 201, grant.text
    day = await api.day(market["id"])
    me = await api.profile("hasselt.trader")
    applied = await api.client.post(
        f"/v1/market-days/{day['id']}/applications",
        json={"min_stalls": 1, "max_stalls": 2, "preferred_stalls": ["A1", "A2"], "anywhere": True},
        headers=api.as_("hasselt.trader"),
    )
    assert applied.status_code == 201, applied.text
    final = await api.client.post(
        f"/v1/market-days/{day['id']}/allocations",
        json={"final": True, "seed": 11},
        headers=api.as_("hasselt.market_master"),
    )
    assert final.status_code == 201, final.text
    return {"market": market, "day": day, "holder": holder, "me": me, "allocation": final.json()}


async def test_trader_applies_and_sees_the_stalls_and_why_after_the_final_allocation(api: Any) -> None:
    setup = await _allocated_day(api)
    allocation = setup["allocation"]
    assert allocation["seed"] == 11 and allocation["optimal"] is True and allocation["final"] is True
    given = {a["trader_id"]: a for a in allocation["assignments"]}
    assert given[setup["holder"]["id"]]["stalls"] == ["B2"] and given[setup["holder"]["id"]]["holder"]
    assert given[setup["me"]["id"]]["stalls"] == ["A1", "A2"]

    mine = (await api.client.get("/v1/me/market-days", headers=api.as_("hasselt.trader"))).json()
    assert [(d["status"], d["stalls"], d["row"]) for d in mine] == [("assigned", ["A1", "A2"], "A")]
    assert "preferred stalls given: A1, A2" in mine[0]["explanation"]
    assert mine[0]["setup_starts_at"] < mine[0]["setup_ends_at"]


async def test_final_allocation_publishes_stalls_with_positions_and_the_set_up_window(api: Any) -> None:
    setup = await _allocated_day(api)
    [event] = await api.events("StallsAllocated")
    assert event["market_day_id"] == setup["day"]["id"] and event["seed"] == 11 and event["round"] == "first"
    assert event["place"]["address"] == "Kolonel Dusartplein, 3500 Hasselt"
    assert event["setup_starts_at"] == setup["day"]["setup_starts_at"].replace("Z", "+00:00") or event[
        "setup_starts_at"
    ].startswith(setup["day"]["date"])
    placed = {a["trader_id"]: a for a in event["assignments"]}
    stall = placed[setup["me"]["id"]]["stalls"][0]
    assert stall["row"] == "A" and abs(stall["lat"] - 50.9307) < 0.001 and abs(stall["lon"] - 5.3378) < 0.001
    assert stall["length_cm"] == 300


async def test_a_concept_run_publishes_nothing_and_can_be_repeated_with_the_same_result(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    for username in ("hasselt.trader", "hasselt.trader2"):
        await api.profile(username)
        await api.client.post(
            f"/v1/market-days/{day['id']}/applications",
            json={"preferred_stalls": ["A1"]},
            headers=api.as_(username),
        )
    runs = []
    for _ in range(2):
        response = await api.client.post(
            f"/v1/market-days/{day['id']}/allocations",
            json={"seed": 5},
            headers=api.as_("hasselt.market_master"),
        )
        assert response.status_code == 201 and response.json()["final"] is False
        runs.append({a["trader_id"]: a["stalls"] for a in response.json()["assignments"]})
    assert runs[0] == runs[1]
    assert await api.events("StallsAllocated") == []
    mine = await api.client.get("/v1/me/market-days", headers=api.as_("hasselt.trader"))
    assert mine.json() == []


async def test_a_second_final_allocation_is_refused(api: Any) -> None:
    setup = await _allocated_day(api)
    again = await api.client.post(
        f"/v1/market-days/{setup['day']['id']}/allocations",
        json={"final": True},
        headers=api.as_("hasselt.market_master"),
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_rejected_trader_sees_the_reason(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    # The fish quota is 1 stall: the first fishmonger (by lottery order) gets it, the second is rejected.
    await api.profile("hasselt.trader", specialisation="vis", food_registration="FAVV-2")
    await api.profile("hasselt.trader2", specialisation="vis", food_registration="FAVV-3")
    for username in ("hasselt.trader", "hasselt.trader2"):
        await api.client.post(f"/v1/market-days/{day['id']}/applications", json={}, headers=api.as_(username))
    await api.client.post(
        f"/v1/market-days/{day['id']}/allocations",
        json={"final": True, "seed": 3},
        headers=api.as_("hasselt.market_master"),
    )
    outcomes = []
    for username in ("hasselt.trader", "hasselt.trader2"):
        [mine] = (await api.client.get("/v1/me/market-days", headers=api.as_(username))).json()
        outcomes.append((mine["status"], mine["reason_code"]))
    assert sorted(outcomes, key=str) == [("assigned", None), ("rejected", "category_full")]


async def test_check_in_by_qr_code_then_release_round_gives_no_show_stalls_to_a_walk_in(api: Any) -> None:
    setup = await _allocated_day(api)
    day_id = setup["day"]["id"]
    [mine] = (await api.client.get("/v1/me/market-days", headers=api.as_("hasselt.trader"))).json()
    code = await api.client.get(
        f"/v1/me/assignments/{mine['assignment_id']}/check-in-code", headers=api.as_("hasselt.trader")
    )
    assert code.status_code == 200
    svg = await api.client.get(code.json()["svg_path"], headers=api.as_("hasselt.trader"))
    png = await api.client.get(code.json()["png_path"], headers=api.as_("hasselt.trader"))
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")

    scan = await api.client.post(
        f"/v1/market-days/{day_id}/check-ins",
        json={"token": code.json()["token"]},
        headers=api.as_("hasselt.market_master"),
    )
    assert scan.status_code == 200 and scan.json()["already_checked_in"] is False
    again = await api.client.post(
        f"/v1/market-days/{day_id}/check-ins",
        json={"token": code.json()["token"]},
        headers=api.as_("hasselt.market_master"),
    )
    assert again.json()["already_checked_in"] is True
    assert len(await api.events("TraderCheckedIn")) == 1

    walk_in = await api.trader(
        name="Bakkerij Claes", specialisation="brood", products=["brood"], food_registration="F"
    )
    released = await api.client.post(
        f"/v1/market-days/{day_id}/release-round",
        json={"walk_ins": [{"trader_id": walk_in["id"], "preferred_stalls": ["B2"], "anywhere": False}]},
        headers=api.as_("hasselt.market_master"),
    )
    assert released.status_code == 201, released.text
    given = {a["trader_id"]: a["stalls"] for a in released.json()["assignments"]}
    # The absent fish holder's B2 went to the walk-in; the trader who checked in keeps A1, A2.
    assert given[walk_in["id"]] == ["B2"] and given[setup["me"]["id"]] == ["A1", "A2"]
    [freed] = await api.events("StallReleased")
    assert freed["trader_id"] == setup["holder"]["id"] and freed["reason"] == "absent_holder"

    attendance = (
        await api.client.get(f"/v1/market-days/{day_id}/attendance", headers=api.as_("hasselt.market_master"))
    ).json()
    assert (attendance["assigned"], attendance["present"], attendance["released"]) == (3, 1, 1)
    report = await api.client.get(
        f"/v1/markets/{setup['market']['id']}/attendance",
        params={"start": setup["day"]["date"], "end": setup["day"]["date"]},
        headers=api.as_("hasselt.market_master"),
    )
    per_trader = {t["trader_id"]: t for t in report.json()["traders"]}
    assert per_trader[setup["holder"]["id"]]["no_show_days"] == 1
    assert per_trader[setup["me"]["id"]]["present_days"] == 1


async def test_checked_in_traders_are_invoiced_per_metre_per_stall_and_electricity_once(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    await api.profile("hasselt.trader")
    await api.client.post(
        f"/v1/market-days/{day['id']}/applications",
        json={"preferred_stalls": ["A4"], "anywhere": False, "needs": ["electricity"]},
        headers=api.as_("hasselt.trader"),
    )
    await api.client.post(
        f"/v1/market-days/{day['id']}/allocations",
        json={"final": True},
        headers=api.as_("hasselt.market_master"),
    )
    [mine] = (await api.client.get("/v1/me/market-days", headers=api.as_("hasselt.trader"))).json()
    assert mine["stalls"] == ["A4"]
    code = await api.client.get(
        f"/v1/me/assignments/{mine['assignment_id']}/check-in-code", headers=api.as_("hasselt.trader")
    )
    master = api.as_("hasselt.market_master")
    await api.client.post(
        f"/v1/market-days/{day['id']}/check-ins", json={"token": code.json()["token"]}, headers=master
    )
    first = await api.client.post(f"/v1/market-days/{day['id']}/invoices", headers=master)
    second = await api.client.post(f"/v1/market-days/{day['id']}/invoices", headers=master)
    [invoice] = first.json()
    # 3 m at 1.50 EUR, one stall at 2.00 EUR, electricity 3.50 EUR.
    assert invoice["total_cents"] == 450 + 200 + 350
    assert second.json() == []
    mine_invoices = (await api.client.get("/v1/me/invoices", headers=api.as_("hasselt.trader"))).json()
    assert [i["number"] for i in mine_invoices] == [invoice["number"]]
    [event] = await api.events("FeeInvoiced")
    assert event["total_cents"] == 1000 and sum(line["amount_cents"] for line in event["lines"]) == 1000


async def test_withdrawn_application_is_not_allocated(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    await api.profile("hasselt.trader")
    applied = await api.client.post(
        f"/v1/market-days/{day['id']}/applications", json={}, headers=api.as_("hasselt.trader")
    )
    gone = await api.client.delete(
        f"/v1/me/applications/{applied.json()['id']}", headers=api.as_("hasselt.trader")
    )
    assert gone.status_code == 200 and gone.json()["withdrawn_at"] is not None
    result = await api.client.post(
        f"/v1/market-days/{day['id']}/allocations",
        json={"final": True},
        headers=api.as_("hasselt.market_master"),
    )
    assert result.json()["assignments"] == [] and result.json()["rejections"] == []
    market_types = [t for t in await api.event_types() if t.startswith("be.cityblocks.market.")]
    assert [t.rsplit(".", 2)[-2] for t in market_types][-3:] == [
        "ApplicationSubmitted",
        "ApplicationWithdrawn",
        "StallsAllocated",
    ]


async def test_public_day_view_lists_stall_trader_and_products_and_searches_by_product(api: Any) -> None:
    setup = await _allocated_day(api)
    day_id = setup["day"]["id"]
    everything = (await api.client.get(f"/v1/public/market-days/{day_id}")).json()
    assert everything["allocated"] is True
    assert {(s["number"], s["trader_name"]) for s in everything["stalls"]} == {
        ("A1", "Handelszaak hasselt.trader"),
        ("A2", "Handelszaak hasselt.trader"),
        ("B2", "Viswinkel Maes"),
    }
    honey = (await api.client.get(f"/v1/public/market-days/{day_id}", params={"product": "Honing"})).json()
    assert {s["number"] for s in honey["stalls"]} == {"A1", "A2"}
    assert honey["stalls"][0]["products"] == ["honing", "siroop"]


async def test_subscription_transfer_keeps_the_specialisation_and_locks_for_a_year(api: Any) -> None:
    market = await api.market()
    master = api.as_("hasselt.market_master")
    old = await api.trader(name="Vis A")
    new = await api.trader(name="Vis B")
    other = await api.trader(name="Vis C")
    sub = await api.client.post(
        f"/v1/markets/{market['id']}/subscriptions",
        json={"trader_id": old["id"], "stalls": ["B1"], "granted_on": "2020-01-01"},
        headers=master,
    )
    moved = await api.client.post(
        f"/v1/subscriptions/{sub.json()['id']}/transfer",
        json={"to_trader_id": new["id"], "on": "2026-01-10"},
        headers=master,
    )
    assert moved.status_code == 200 and moved.json()["trader_id"] == new["id"]
    again = await api.client.post(
        f"/v1/subscriptions/{sub.json()['id']}/transfer",
        json={"to_trader_id": other["id"], "on": "2026-06-10"},
        headers=master,
    )
    assert again.status_code == 422 and again.json()["errors"][0]["loc"] == ["body", "on"]
    async with api.app.state.context.sessionmaker() as session:
        holder = await session.scalar(select(store.subscriptions.c.trader_id))
        count = await session.scalar(select(func.count()).select_from(store.subscriptions))
    assert (str(holder), count) == (new["id"], 1)
    assert [e["to_trader_id"] for e in await api.events("SubscriptionTransferred")] == [new["id"]]


async def test_walk_ins_are_placed_in_order_of_arrival_where_the_regulation_says_so(
    api: Any, market_json: Any
) -> None:
    body = market_json()
    body["regulation"]["method"] = "arrival_order"
    master = api.as_("hasselt.market_master")
    market = (await api.client.post("/v1/markets", json=body, headers=master)).json()
    day = await api.day(market["id"])
    await api.client.post(f"/v1/market-days/{day['id']}/allocations", json={"final": True}, headers=master)
    late = await api.trader(name="Laat", specialisation=None, products=["sokken"])
    early = await api.trader(name="Vroeg", specialisation=None, products=["sjaals"])
    released = await api.client.post(
        f"/v1/market-days/{day['id']}/release-round",
        json={
            "walk_ins": [
                {
                    "trader_id": late["id"],
                    "preferred_stalls": ["A1"],
                    "anywhere": False,
                    "arrived_at": "2026-01-01T07:30:00Z",
                },
                {
                    "trader_id": early["id"],
                    "preferred_stalls": ["A1"],
                    "anywhere": False,
                    "arrived_at": "2026-01-01T07:10:00Z",
                },
            ],
            "seed": 1,
        },
        headers=master,
    )
    assert released.status_code == 201, released.text
    result = released.json()
    assert {a["trader_id"]: a["stalls"] for a in result["assignments"]} == {early["id"]: ["A1"]}
    assert [(r["trader_id"], r["reason_code"]) for r in result["rejections"]] == [
        (late["id"], "preferences_unavailable")
    ]
    assert result["round"] == "release" and result["method"] == "arrival_order"


async def test_applying_again_replaces_the_earlier_application(api: Any) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    await api.profile("hasselt.trader")
    first = await api.client.post(
        f"/v1/market-days/{day['id']}/applications", json={}, headers=api.as_("hasselt.trader")
    )
    await api.client.post(
        f"/v1/market-days/{day['id']}/applications", json={"max_stalls": 2}, headers=api.as_("hasselt.trader")
    )
    mine = (await api.client.get("/v1/me/applications", headers=api.as_("hasselt.trader"))).json()
    assert [(a["max_stalls"], a["withdrawn_at"] is None) for a in mine] == [(1, False), (2, True)]
    assert [e["application_id"] for e in await api.events("ApplicationWithdrawn")] == [first.json()["id"]]


async def test_a_final_run_is_not_published_when_an_application_arrived_while_it_ran(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = await api.market()
    day = await api.day(market["id"])
    await api.profile("hasselt.trader")
    await api.profile("hasselt.trader2")
    await api.client.post(
        f"/v1/market-days/{day['id']}/applications", json={}, headers=api.as_("hasselt.trader")
    )
    solving, go_on = threading.Event(), threading.Event()

    def slow_allocate(source: Any) -> Any:
        solving.set()
        go_on.wait(10)
        return allocate(source)

    monkeypatch.setattr(allocating, "allocate", slow_allocate)
    run = asyncio.create_task(
        api.client.post(
            f"/v1/market-days/{day['id']}/allocations",
            json={"final": True},
            headers=api.as_("hasselt.market_master"),
        )
    )
    await asyncio.to_thread(solving.wait, 10)
    late = await api.client.post(
        f"/v1/market-days/{day['id']}/applications", json={}, headers=api.as_("hasselt.trader2")
    )
    go_on.set()
    response = await run
    assert late.status_code == 201 and response.status_code == 409
    assert await api.events("StallsAllocated") == []
    async with api.app.state.context.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(store.assignments)) == 0
