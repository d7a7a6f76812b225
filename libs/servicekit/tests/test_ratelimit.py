"""Rate limits on public routes and the login: a steady rate per client, bursts, 429 with Retry-After."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter
from sqlalchemy import MetaData

from servicekit.app import create_service_app
from servicekit.devidp import DevIdentityProvider, devidp_app
from servicekit.problems import PROBLEM_JSON
from servicekit.ratelimit import MAX_CLIENTS, TokenBuckets
from servicekit.service import ServiceSpec
from servicekit.settings import ServiceSettings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_the_steady_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(per_minute=60, burst=3, clock=clock)

    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == 1.0
    assert buckets.take("b") == 0
    clock.now = 1.0
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0


def test_memory_stays_bounded_when_many_clients_come() -> None:
    buckets = TokenBuckets(per_minute=60, burst=1, clock=Clock())

    for n in range(MAX_CLIENTS + 50):
        buckets.take(f"10.0.{n // 256}.{n % 256}")

    assert len(buckets.buckets) == MAX_CLIENTS


def public_spec() -> ServiceSpec:
    router = APIRouter()

    @router.get("/v1/public/markets")
    async def markets() -> list[str]:
        return ["Dinsdagmarkt"]

    @router.get("/v1/other")
    async def other() -> str:
        return "fine"

    return ServiceSpec(name="limited", title="Limited", metadata=MetaData(), routers=[router])


async def test_public_routes_answer_429_with_retry_after_beyond_the_limit(tmp_path: Path) -> None:
    settings = ServiceSettings(service_name="limited", data_dir=tmp_path, rate_limit_public_per_minute=6)
    app = create_service_app(public_spec(), settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/v1/public/markets")
        second = await client.get("/v1/public/markets")
        others = [await client.get("/v1/other") for _ in range(5)]

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["content-type"] == PROBLEM_JSON
    assert int(second.headers["retry-after"]) == 10
    assert {response.status_code for response in others} == {200}


async def test_logins_are_limited_per_client(tmp_path: Path) -> None:
    provider = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=tmp_path))
    app = devidp_app(provider, logins_per_minute=4)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        statuses = [
            (await client.post("/token", data={"username": "hasselt.citizen"})).status_code for _ in range(3)
        ]
        users = await client.get("/users")

    assert statuses == [200, 200, 429]
    assert users.status_code == 200
