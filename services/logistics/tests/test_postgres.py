"""The operator's day on PostgreSQL, the schema made by the service's migrations."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from logistics.settings import Settings

pytestmark = pytest.mark.postgres
OPERATOR = "hasselt.operator"


async def test_a_day_is_planned_dispatched_and_delivered_on_postgresql(
    postgres_url: str,
    tmp_path: Path,
    make_api: Callable[[Settings], AbstractAsyncContextManager[Any]],
    bodies: SimpleNamespace,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        migrate_on_start=True,
        create_tables=False,
        solver_time_limit_s=1.0,
        solver_deterministic=True,
        log_json=False,
    )
    async with make_api(settings) as api:
        fleet = await api.fleet()
        for n in range(5):
            body = bodies.order(fleet["hub"]["id"], n, 50.9290 + 0.0007 * n, 5.3350 + 0.001 * n)
            await api.ok("POST", "/orders", OPERATOR, body)
        started = await api.ok(
            "POST", "/planning-runs", OPERATOR, {"delivery_date": "2026-11-27", "time_limit_s": 0.3}
        )
        run = await api.finished_run(started["id"])
        await api.ok("POST", f"/planning-runs/{run['id']}/dispatch", OPERATOR, {})
        route = (await api.ok("GET", "/driver/routes", "hasselt.driver"))[0]
        await api.ok(
            "POST", f"/routes/{route['id']}/stops/0/done", "hasselt.driver", {"at": bodies.at(9).isoformat()}
        )
        events = await api.events("StopCompleted")

    assert run["status"] == "completed" and run["summary"]["violations"] == []
    assert run["summary"]["orders_planned"] == 5
    assert [e["vehicle_kind"] for e in events] == ["cargo_bike"]
