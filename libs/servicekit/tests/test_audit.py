"""Every changing request of a city admin or market master leaves an audit event, in the same transaction."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from eventbus.tables import outbox
from servicekit.devidp import DevIdentityProvider, demo_user


async def audit_records(app: FastAPI) -> list[dict[str, Any]]:
    """The audit events in the service's outbox: attributes (tenant, ...) and data."""
    async with app.state.context.sessionmaker() as session:
        rows = await session.execute(
            select(outbox.c.attributes, outbox.c.data).where(
                outbox.c.type == "be.cityblocks.platform.AdminActionRecorded.v1"
            )
        )
    return [{**attributes, "data": data} for attributes, data in rows]


async def test_an_admins_change_is_recorded_with_who_what_and_where(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    headers = {"Authorization": f"Bearer {token}", "x-request-id": "r-1"}
    response = await client.post("/v1/records", json={"stream": "s", "seq": 1}, headers=headers)

    (record,) = await audit_records(app)
    assert response.status_code == 202
    assert record["data"]["actor"] == demo_user("hasselt.city_admin").subject
    assert record["data"]["route"] == "/v1/records"
    assert record["data"]["method"] == "POST"
    assert record["data"]["request_id"] == "r-1"
    assert record["tenant"] == "71022"


async def test_a_change_that_fails_leaves_no_audit_record(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post(
        "/v1/records", json={"stream": "closed", "seq": 1}, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 409
    assert await audit_records(app) == []


async def test_other_callers_and_reads_are_not_audited(
    app: FastAPI, client: httpx.AsyncClient, idp: DevIdentityProvider, token: str
) -> None:
    trader = idp.issue(demo_user("hasselt.trader"))

    await client.post("/v1/poison", headers={"Authorization": f"Bearer {trader}"})
    await client.get("/v1/seen", headers={"Authorization": f"Bearer {token}"})

    assert await audit_records(app) == []
