"""The provider's trip form on the whole embedded platform: a submit sent again pays once and says paid."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cityblocks.embedded import build_platform

HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = build_platform(tmp_path)
    for service in app.state.services:
        if service.name == "console":
            service.app.state.service_transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield client


async def bearer(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    token = (await client.post("/auth/token", data={"username": username})).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def granted_citizen(client: httpx.AsyncClient) -> str:
    admin = await bearer(client, "geel.city_admin")
    schemes = (await client.get("/mobility-credit/v1/schemes", headers=admin)).json()
    scheme = next(s for s in schemes if s["definition"]["name"] == "Mobiliteitsbudget Geel")
    url = f"/mobility-credit/v1/schemes/{scheme['id']}/grants"
    granted = await client.post(url, json={"citizen_id": "citizen-twice"}, headers=admin)
    assert granted.status_code == 201, granted.text
    return "citizen-twice"


async def test_a_trip_form_submitted_again_after_a_lost_answer_pays_once_and_says_paid(
    client: httpx.AsyncClient,
) -> None:
    citizen = await granted_citizen(client)
    assert (await client.post("/console/login", data={"username": "geel.provider"})).status_code == 303
    page = await client.get("/console/provider")
    providers = re.findall(r'<option value="([0-9a-f-]{36})">', page.text)
    form = {
        **dict(HIDDEN_FIELD.findall(page.text)),
        "provider_id": providers[0],
        "citizen_id": citizen,
        "mode": "bus",
        "fare_cents": "250",
        "place": "Geel Markt",
    }

    answers = [await client.post("/console/provider/trips", data=form) for _ in range(2)]

    for answer in answers:
        assert answer.status_code == 303
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query.get("ok") == ["1"], query.get("message")
    url = f"/mobility-credit/v1/providers/{providers[0]}/trips"
    trips = (await client.get(url, headers=await bearer(client, "geel.provider"))).json()
    assert [trip["citizen_id"] for trip in trips].count(citizen) == 1
