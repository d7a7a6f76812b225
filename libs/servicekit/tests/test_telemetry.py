"""With an exporter configured, a request and the events it causes are spans of one trace."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from servicekit.telemetry import configure_tracing, shutdown_tracing


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("probe", None, exporter=exporter)
    yield exporter
    shutdown_tracing()


async def test_a_request_and_the_event_it_emits_share_one_trace(
    exporter: InMemorySpanExporter, app: FastAPI, token: str
) -> None:
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            headers = {"Authorization": f"Bearer {token}", "traceparent": caller}
            await client.post("/v1/records", json={"stream": "t", "seq": 1}, headers=headers)
            await until_handled(exporter)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    request = spans["probe POST /v1/records"]
    handled = spans["probe handles ProbeRecorded"]
    assert request.context.trace_id == handled.context.trace_id == int("4bf92f3577b34da6a3ce929d0e0e4736", 16)
    assert request.parent is not None and request.parent.span_id == int("00f067aa0ba902b7", 16)
    assert handled.parent is not None and handled.parent.span_id == request.context.span_id


async def until_handled(exporter: InMemorySpanExporter) -> None:
    """Wait until the consumer's span has finished."""
    for _ in range(100):
        if any("handles" in span.name for span in exporter.get_finished_spans()):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the event was not handled")


def test_without_an_endpoint_nothing_is_recorded() -> None:
    assert configure_tracing("probe", None) is None
