"""The API journey on PostgreSQL, with the schema built by the service's Alembic migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from market.app import Settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def market_settings(tmp_path: Path, postgres_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        create_tables=False,
        migrate_on_start=True,
        solver_time_limit_s=3.0,
        enforce_release_time=False,
        log_level="WARNING",
    )


async def test_apply_allocate_check_in_invoice_and_public_view_on_postgresql(api: Any) -> None:
    market = await api.market()
    holder = await api.trader(name="Viswinkel Maes")
    master = api.as_("hasselt.market_master")
    await api.client.post(
        f"/v1/markets/{market['id']}/subscriptions",
        json={"trader_id": holder["id"], "stalls": ["B2"], "granted_on": "2020-03-01"},
        headers=master,
    )
    day = await api.day(market["id"])
    me = await api.profile("hasselt.trader")
    applied = await api.client.post(
        f"/v1/market-days/{day['id']}/applications",
        json={"max_stalls": 2, "preferred_stalls": ["A1", "A2"]},
        headers=api.as_("hasselt.trader"),
    )
    assert applied.status_code == 201, applied.text
    final = await api.client.post(
        f"/v1/market-days/{day['id']}/allocations", json={"final": True, "seed": 1}, headers=master
    )
    assert final.status_code == 201, final.text

    [mine] = (await api.client.get("/v1/me/market-days", headers=api.as_("hasselt.trader"))).json()
    assert (mine["status"], mine["stalls"]) == ("assigned", ["A1", "A2"])
    code = await api.client.get(
        f"/v1/me/assignments/{mine['assignment_id']}/check-in-code", headers=api.as_("hasselt.trader")
    )
    scan = await api.client.post(
        f"/v1/market-days/{day['id']}/check-ins", json={"token": code.json()["token"]}, headers=master
    )
    assert scan.status_code == 200, scan.text
    [invoice] = (await api.client.post(f"/v1/market-days/{day['id']}/invoices", headers=master)).json()
    assert invoice["trader_id"] == me["id"] and invoice["total_cents"] == 900 + 400
    released = await api.client.post(f"/v1/market-days/{day['id']}/release-round", json={}, headers=master)
    assert released.status_code == 201, released.text
    public = (
        await api.client.get(f"/v1/public/market-days/{day['id']}", params={"product": "honing"})
    ).json()
    assert [s["number"] for s in public["stalls"]] == ["A1", "A2"]
    types = [t.split(".")[3] for t in await api.event_types() if t.startswith("be.cityblocks.market.")]
    assert types.count("StallsAllocated") == 2 and "FeeInvoiced" in types and "StallReleased" in types


async def test_bad_input_writes_nothing_on_postgresql(api: Any, market_json: Any) -> None:
    body = market_json()
    body["plan"]["rows"][0]["stalls"][1]["number"] = "A1"
    response = await api.client.post("/v1/markets", json=body, headers=api.as_("hasselt.market_master"))
    assert response.status_code == 422
    assert (await api.client.get("/v1/markets", headers=api.as_("hasselt.market_master"))).json() == []
