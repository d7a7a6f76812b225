"""Planning runs work in a child process: the service keeps answering and shows the search's progress."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import update

from logistics import store
from logistics.handlers import planning
from logistics.schemas import PlanningRunIn
from logistics.settings import Settings
from servicekit.auth import Principal
from servicekit.devidp import demo_user_id

OPERATOR = "hasselt.operator"


async def test_a_running_plan_reports_progress_while_the_api_keeps_answering(
    api: Any, bodies: SimpleNamespace, service_settings: Settings
) -> None:
    fleet = await api.fleet()
    for n in range(12):
        place = (50.9270 + 0.0007 * n, 5.3320 + 0.0011 * n)
        await api.ok("POST", "/orders", OPERATOR, bodies.order(fleet["hub"]["id"], n, *place))
    settings = service_settings.model_copy(
        update={"solver_deterministic": False, "progress_interval_s": 0.05}
    )
    operator = Principal(demo_user_id(OPERATOR), frozenset({"operator"}), "71022")
    uow_factory = api.app.state.uow_factory
    run = await planning.start_run(
        uow_factory, settings, operator, PlanningRunIn(delivery_date=bodies.day.date(), time_limit_s=1.5)
    )

    task = asyncio.create_task(planning.execute_run(uow_factory, settings, run.id))
    seen = []
    while not task.done():
        seen.append(await api.ok("GET", f"/planning-runs/{run.id}", OPERATOR))
        await asyncio.sleep(0.05)
    await task

    assert "running" in [s["status"] for s in seen]
    assert any(s["progress"] and s["progress"]["solutions"] >= 1 for s in seen)
    done = await api.ok("GET", f"/planning-runs/{run.id}", OPERATOR)
    assert done["status"] == "completed" and done["summary"]["orders_planned"] == 12


async def test_a_day_without_orders_completes_with_an_empty_plan(api: Any, bodies: SimpleNamespace) -> None:
    await api.fleet()

    run = await api.ok(
        "POST", "/planning-runs", OPERATOR, {"delivery_date": "2026-11-27", "time_limit_s": 0.5}
    )
    done = await api.finished_run(run["id"])

    assert done["status"] == "completed"
    assert done["summary"]["orders_planned"] == 0


async def test_a_run_abandoned_by_a_stopped_service_ends_failed_at_the_next_start(
    service_settings: Settings, make_api: Any
) -> None:
    async with make_api(service_settings) as api:
        operator = Principal(demo_user_id(OPERATOR), frozenset({"operator"}), "71022")
        body = PlanningRunIn(delivery_date=date(2026, 11, 27), time_limit_s=1)
        run = await planning.start_run(api.app.state.uow_factory, service_settings, operator, body)
        async with api.app.state.uow_factory() as uow:
            long_ago = datetime.now(UTC) - timedelta(hours=1)
            await uow.session.execute(
                update(store.planning_runs).values(status="running", created_at=long_ago)
            )

    async with make_api(service_settings) as api:
        found = await api.ok("GET", f"/planning-runs/{run.id}", OPERATOR)

    assert (found["status"], found["error"]) == ("failed", "the service stopped during planning")


async def test_a_run_waits_queued_while_every_planning_slot_is_taken(
    api: Any, bodies: SimpleNamespace, service_settings: Settings
) -> None:
    fleet = await api.fleet()
    await api.ok("POST", "/orders", OPERATOR, bodies.order(fleet["hub"]["id"], 1))
    operator = Principal(demo_user_id(OPERATOR), frozenset({"operator"}), "71022")
    uow_factory = api.app.state.uow_factory
    body = PlanningRunIn(delivery_date=bodies.day.date(), time_limit_s=0.3)
    run = await planning.start_run(uow_factory, service_settings, operator, body)
    slots = asyncio.Semaphore(1)

    async with slots:
        task = asyncio.create_task(planning.execute_run(uow_factory, service_settings, run.id, slots))
        await asyncio.sleep(0.2)
        waiting = await api.ok("GET", f"/planning-runs/{run.id}", OPERATOR)
    await task

    assert waiting["status"] == "queued"
    assert (await api.ok("GET", f"/planning-runs/{run.id}", OPERATOR))["status"] == "completed"
