"""One trace from a market master's final allocation to the logistics service that takes it in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cityblocks.embedded import build_platform
from servicekit.devidp import DevIdentityProvider, demo_user
from servicekit.settings import ServiceSettings
from servicekit.telemetry import configure_tracing, shutdown_tracing


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("cityblocks", None, exporter=exporter)
    yield exporter
    shutdown_tracing()


async def next_hasselt_day(client: httpx.AsyncClient) -> str:
    markets = (await client.get("/market/v1/public/markets")).json()
    hasselt = next(m for m in markets if m["tenant"] == "71022")
    days = (await client.get(f"/market/v1/public/markets/{hasselt['id']}/days")).json()
    coming = [day for day in days if date.fromisoformat(day["date"]) >= date.today()]
    return str(min(coming, key=lambda day: day["date"])["id"])


async def test_an_allocation_and_the_deliveries_it_causes_are_one_trace(
    exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    platform = build_platform(tmp_path)
    identity = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=tmp_path))
    master = {"Authorization": f"Bearer {identity.issue(demo_user('hasselt.market_master'))}"}
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform", timeout=120) as client:
            day = await next_hasselt_day(client)
            run = await client.post(
                f"/market/v1/market-days/{day}/allocations", json={"final": True, "seed": 7}, headers=master
            )
            assert run.status_code == 201, run.text
            for _ in range(200):
                names = {span.name for span in exporter.get_finished_spans()}
                if "logistics handles StallsAllocated" in names:
                    break
                await asyncio.sleep(0.1)

    spans = exporter.get_finished_spans()
    request = next(s for s in spans if s.name == f"market POST /market/v1/market-days/{day}/allocations")
    handled = next(s for s in spans if s.name == "logistics handles StallsAllocated")
    assert handled.context.trace_id == request.context.trace_id
    assert handled.parent is not None and handled.parent.span_id == request.context.span_id
