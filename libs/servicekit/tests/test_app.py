"""The service app: lifespan wiring of outbox, relay and consumer, problems, request ids."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import MetaData, inspect

from eventbus import tracing
from servicekit.app import create_service_app
from servicekit.devidp import DevIdentityProvider, demo_user
from servicekit.problems import PROBLEM_JSON
from servicekit.service import ServiceContext, ServiceSpec
from servicekit.settings import ServiceSettings


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def eventually_seen(
    client: httpx.AsyncClient, token: str, count: int, timeout_s: float = 5
) -> list[dict[str, Any]]:
    async with asyncio.timeout(timeout_s):
        while True:
            rows: list[dict[str, Any]] = (await client.get("/v1/seen", headers=auth(token))).json()
            if len(rows) >= count:
                return rows
            await asyncio.sleep(0.02)


async def eventually_dead_letters(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(5):
        while True:
            letters: list[dict[str, Any]] = (await client.get("/v1/dead-letters", headers=auth(token))).json()
            if letters:
                return letters
            await asyncio.sleep(0.02)


async def test_an_emitted_event_reaches_the_subscription_through_outbox_relay_and_bus(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post("/v1/records", json={"stream": "s1", "seq": 1}, headers=auth(token))
    assert response.status_code == 202

    rows = await eventually_seen(client, token, 1)

    assert [(row["stream"], row["seq"], row["tenant"]) for row in rows] == [("s1", 1, "71022")]


async def test_the_request_trace_travels_with_the_event(client: httpx.AsyncClient, token: str) -> None:
    incoming = tracing.new_traceparent()
    headers = {**auth(token), "traceparent": incoming}

    await client.post("/v1/records", json={"stream": "t", "seq": 1}, headers=headers)

    rows = await eventually_seen(client, token, 1)
    assert tracing.trace_id_of(rows[0]["traceparent"]) == tracing.trace_id_of(incoming)


async def test_startup_hooks_run_in_the_lifespan(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    assert (settings.data_dir / "seeded").read_text() == "yes"


async def test_the_service_database_holds_its_tables_and_the_eventbus_tables(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    async with app.state.context.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())

    assert {"probe_seen", "outbox", "inbox", "dead_letters"} <= set(names)


async def test_health_answers_without_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.json() == {"status": "ok", "service": "probe"}


async def test_ready_checks_database_and_bus(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "bus": "ok"}


async def test_ready_is_a_503_problem_before_the_lifespan_ran(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["checks"] == {"lifespan": "not started"}


async def test_ready_is_a_503_problem_when_the_database_fails(
    probe_spec: ServiceSpec, settings: ServiceSettings
) -> None:
    app = create_service_app(probe_spec, settings)
    async with app.router.lifespan_context(app):
        await app.state.context.engine.dispose()
        app.state.context.engine.pool.connect = _refuse  # the database goes away
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            response = await client.get("/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("failed")


def _refuse() -> None:
    raise ConnectionRefusedError("database down")


async def test_metrics_expose_requests_per_route_template(client: httpx.AsyncClient, token: str) -> None:
    await client.get("/v1/tenants/71022/thing", headers=auth(token))

    text = (await client.get("/metrics")).text

    assert 'route="/v1/tenants/{tenant}/thing"' in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'cityblocks_consumer_group_lag{group="probe"}' in text


async def test_a_request_id_is_echoed_or_made_up(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    made_up = await client.get("/health")

    assert given.headers["x-request-id"] == "abc-123"
    assert len(made_up.headers["x-request-id"]) == 32


async def test_a_domain_error_is_a_problem_with_the_mapped_status(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post("/v1/records", json={"stream": "closed", "seq": 1}, headers=auth(token))

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == "urn:cityblocks:problem:stream-closed"
    assert body["title"] == "Stream closed"
    assert body["detail"] == "stream closed is closed"
    assert body["instance"] == "/v1/records"


async def test_invalid_input_is_a_422_problem_naming_the_fields(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post("/v1/records", json={"stream": "", "seq": -1}, headers=auth(token))

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    locs = [error["loc"] for error in response.json()["errors"]]
    assert ["body", "stream"] in locs
    assert ["body", "seq"] in locs


async def test_an_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["title"] == "Not Found"


async def test_an_unhandled_error_is_a_500_problem_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/boom", headers={"X-Request-ID": "req-500"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["x-request-id"] == "req-500"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


async def test_a_poison_event_is_dead_lettered_listed_and_replayable(
    client: httpx.AsyncClient, token: str
) -> None:
    await client.post("/v1/poison", headers=auth(token))

    letters = await eventually_dead_letters(client, token)
    replayed = await client.post(f"/v1/dead-letters/{letters[0]['id']}/replay", headers=auth(token))

    assert letters[0]["tenant"] == "71022"
    assert "cannot be applied" in letters[0]["error"]
    assert replayed.status_code == 409
    assert replayed.headers["content-type"] == PROBLEM_JSON


async def test_dead_letters_are_for_city_admins_of_the_same_municipality(
    client: httpx.AsyncClient, token: str, idp: DevIdentityProvider
) -> None:
    await client.post("/v1/poison", headers=auth(token))
    letters = await eventually_dead_letters(client, token)
    trader = idp.issue(demo_user("hasselt.trader"))
    geel_admin = idp.issue(demo_user("geel.city_admin"))

    assert (await client.get("/v1/dead-letters", headers=auth(trader))).status_code == 403
    assert (await client.get("/v1/dead-letters", headers=auth(geel_admin))).json() == []
    replay = await client.post(f"/v1/dead-letters/{letters[0]['id']}/replay", headers=auth(geel_admin))
    assert replay.status_code == 404


async def test_a_dead_letter_id_beyond_64_bits_is_a_422_naming_it(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post(f"/v1/dead-letters/{2**70}/replay", headers=auth(token))

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["errors"][0]["loc"] == ["path", "dead_letter_id"]


class Hours(BaseModel):
    opens: dt.time


def test_local_times_of_day_are_documented_as_partial_time() -> None:
    router = APIRouter()

    @router.get("/v1/opening")
    async def opening() -> dict[str, dt.time]:
        return {"opens": dt.time(8, 30)}

    @router.post("/v1/hours")
    async def hours(body: Hours) -> Hours:
        return body

    spec = ServiceSpec(name="timed", title="Timed", metadata=MetaData(), routers=[router])
    document = json.dumps(create_service_app(spec, ServiceSettings(service_name="timed")).openapi())

    assert '"partial-time"' in document
    assert '"format": "time"' not in document


async def test_openapi_docs_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/records" in schema["paths"]
    assert "/v1/dead-letters" in schema["paths"]


@pytest.mark.kafka
async def test_with_the_kafka_bus_an_emitted_event_reaches_the_subscription(
    probe_spec: ServiceSpec, tmp_path: Path, kafka_bootstrap: str, idp: DevIdentityProvider
) -> None:
    settings = ServiceSettings(
        service_name="probe",
        data_dir=tmp_path,
        bus="kafka",
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
    )
    app = create_service_app(probe_spec, settings)
    token = idp.issue(demo_user("hasselt.city_admin"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            await client.post("/v1/records", json={"stream": "k", "seq": 7}, headers=auth(token))
            rows = await eventually_seen(client, token, 1, timeout_s=30)
            ready = await client.get("/ready")

    assert [(row["stream"], row["seq"]) for row in rows] == [("k", 7)]
    assert ready.json()["checks"] == {"database": "ok", "bus": "ok"}


async def test_background_work_runs_with_the_service_and_stops_with_it(
    probe_spec: ServiceSpec, settings: ServiceSettings
) -> None:
    started: list[asyncio.Task[None]] = []

    async def forever() -> None:
        await asyncio.Event().wait()

    async def spawn_sweeper(context: ServiceContext) -> None:
        started.append(context.spawn(forever(), name="sweeper"))

    spec = dataclasses.replace(probe_spec, startup=[spawn_sweeper])
    app = create_service_app(spec, settings)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0)
        assert not started[0].done()

    assert started[0].cancelled()


def test_what_start_up_made_is_left_out_of_later_garbage_collections(tmp_path: Path) -> None:
    # A process of its own: other tests' services may have frozen this one's heap already.
    script = """
import asyncio, gc, sys
from servicekit.app import create_service_app
from servicekit.service import ServiceSpec
from servicekit.settings import ServiceSettings
from sqlalchemy import MetaData

app = create_service_app(ServiceSpec(name="probe", title="Probe", metadata=MetaData()),
                         ServiceSettings(service_name="probe", data_dir=sys.argv[1]))

async def main():
    async with app.router.lifespan_context(app):
        context = app.state.context
        print(gc.get_freeze_count() > 0, any(o is context for o in gc.get_objects()))

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.split() == ["True", "False"]
