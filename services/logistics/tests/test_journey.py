"""The operator's day end to end: orders, a valid plan, dispatch, a driver's stop, a re-plan keeping it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from logistics.domain import GeoPoint, area_from_geojson
from servicekit.devidp import demo_user_id

OPERATOR = "hasselt.operator"


async def plan_day(api: Any, bodies: SimpleNamespace, orders: int = 6) -> dict[str, Any]:
    fleet = await api.fleet()
    placed = []
    for n in range(orders):
        place = (50.9290 + 0.0006 * n, 5.3340 + 0.0012 * n)
        placed.append(await api.ok("POST", "/orders", OPERATOR, bodies.order(fleet["hub"]["id"], n, *place)))
    body = {"delivery_date": bodies.day.date().isoformat(), "time_limit_s": 0.3}
    started = await api.ok("POST", "/planning-runs", OPERATOR, body)
    assert started["status"] == "queued"
    run = await api.finished_run(started["id"])
    return {"fleet": fleet, "orders": placed, "run": run}


async def test_a_planned_day_serves_every_order_with_routes_the_validator_accepts(
    api: Any, bodies: SimpleNamespace
) -> None:
    day = await plan_day(api, bodies)

    run = day["run"]
    assert run["status"] == "completed", run["error"]
    assert run["summary"]["violations"] == []
    assert run["summary"]["orders_planned"] == 6
    assert run["unassigned"] == []
    routes = await api.ok("GET", f"/planning-runs/{run['id']}/routes", OPERATOR)
    stops = [s for r in routes for s in r["stops"]]
    assert sorted(s["order_id"] for s in stops) == sorted(o["id"] for o in day["orders"])
    assert all(s["arrival"] <= s["service_start"] < s["departure"] for s in stops)
    planned = await api.events("RoutesPlanned")
    assert [e["planning_run_id"] for e in planned] == [run["id"]]


async def test_the_map_shows_routes_as_lines_and_stops_as_points(api: Any, bodies: SimpleNamespace) -> None:
    day = await plan_day(api, bodies, orders=3)

    features = (await api.ok("GET", f"/planning-runs/{day['run']['id']}/map", OPERATOR))["features"]

    kinds = sorted({f["geometry"]["type"] for f in features})
    assert kinds == ["LineString", "Point"]
    assert sum(1 for f in features if f["geometry"]["type"] == "Point") == 3


async def test_a_driver_completes_a_stop_and_stop_completed_carries_the_vehicle_kind(
    api: Any, bodies: SimpleNamespace
) -> None:
    day = await plan_day(api, bodies)
    run_id = day["run"]["id"]
    await api.ok("POST", f"/planning-runs/{run_id}/dispatch", OPERATOR, {})

    mine = await api.ok("GET", "/driver/routes", "hasselt.driver")
    assert len(mine) == 1 and mine[0]["vehicle_kind"] == "cargo_bike"
    route = mine[0]
    stop = route["stops"][0]
    after = await api.ok(
        "POST", f"/routes/{route['id']}/stops/{stop['seq']}/done", "hasselt.driver", {"proof": "sig-1"}
    )

    assert after["stops"][0]["status"] == "done"
    order = await api.ok("GET", f"/orders/{stop['order_id']}", OPERATOR)
    assert order["status"] == "delivered"
    [event] = await api.events("StopCompleted")
    assert event["order_id"] == stop["order_id"]
    assert event["vehicle_kind"] == "cargo_bike"
    assert event["driver_id"] == demo_user_id("hasselt.driver")
    assert event["recipient"]["kind"] == "shop" and event["recipient"]["name"].startswith("Winkel")
    inside = (await api.ok("GET", f"/orders/{stop['order_id']}", OPERATOR))["recipient"]
    ring = (await api.ok("GET", "/zones", OPERATOR))["features"][0]["geometry"]
    # the zones the stop lies in travel with it, for statistics per zone
    assert _inside(ring, inside) and event["zones"] == ["Binnen de Groene Boulevard"]
    assert len(await api.events("RouteDispatched")) == len(
        await api.ok("GET", f"/planning-runs/{run_id}/routes", OPERATOR)
    )


def _inside(geometry: dict[str, Any], location: dict[str, float]) -> bool:
    return area_from_geojson(geometry, "zone").contains(GeoPoint(location["lat"], location["lon"]))


async def test_a_failed_stop_is_recorded_with_its_reason(api: Any, bodies: SimpleNamespace) -> None:
    day = await plan_day(api, bodies, orders=2)
    await api.ok("POST", f"/planning-runs/{day['run']['id']}/dispatch", OPERATOR, {})
    route = (await api.ok("GET", "/driver/routes", "hasselt.driver"))[0]

    body = {"reason": "recipient_absent", "note": "shop closed"}
    await api.ok("POST", f"/routes/{route['id']}/stops/0/failed", "hasselt.driver", body)

    [event] = await api.events("StopFailed")
    assert event["reason"] == "recipient_absent"
    order = await api.ok("GET", f"/orders/{event['order_id']}", OPERATOR)
    assert order["status"] == "failed"
    again = await api.call("POST", f"/routes/{route['id']}/stops/0/done", "hasselt.driver", {})
    assert again.status_code == 409


async def test_a_replan_after_new_orders_keeps_the_completed_stop(api: Any, bodies: SimpleNamespace) -> None:
    day = await plan_day(api, bodies)
    run_id = day["run"]["id"]
    await api.ok("POST", f"/planning-runs/{run_id}/dispatch", OPERATOR, {})
    route = (await api.ok("GET", "/driver/routes", "hasselt.driver"))[0]
    first = route["stops"][0]
    done_at = bodies.at(9).isoformat()
    await api.ok("POST", f"/routes/{route['id']}/stops/0/done", "hasselt.driver", {"at": done_at})
    hub = day["fleet"]["hub"]["id"]
    for n in range(10, 13):
        # Outside the ring: the van may still go there after 09:00, the departed bike cannot load them.
        await api.ok("POST", "/orders", OPERATOR, bodies.order(hub, n, 50.9390, 5.3200 + 0.001 * (n - 10)))

    body = {"at": bodies.at(9, 5).isoformat(), "time_limit_s": 0.3}
    started = await api.ok("POST", f"/planning-runs/{run_id}/replan", OPERATOR, body)
    replanned = await api.finished_run(started["id"])

    assert replanned["status"] == "completed", replanned["error"]
    assert replanned["summary"]["violations"] == []
    assert replanned["summary"]["orders_planned"] == 6 + 3 - 1
    assert (await api.ok("GET", f"/planning-runs/{run_id}", OPERATOR))["status"] == "superseded"
    mine = await api.ok("GET", "/driver/routes", "hasselt.driver")
    assert [r["run_id"] for r in mine] == [replanned["id"]]
    kept = mine[0]["stops"][0]
    assert (kept["order_id"], kept["status"]) == (first["order_id"], "done")


async def test_a_vehicle_breaking_down_keeps_its_done_stops_and_hands_on_or_reports_the_rest(
    api: Any, bodies: SimpleNamespace
) -> None:
    day = await plan_day(api, bodies)
    run_id = day["run"]["id"]
    await api.ok("POST", f"/planning-runs/{run_id}/dispatch", OPERATOR, {})
    bike_route = (await api.ok("GET", "/driver/routes", "hasselt.driver"))[0]
    await api.ok(
        "POST", f"/routes/{bike_route['id']}/stops/0/done", "hasselt.driver", {"at": bodies.at(9).isoformat()}
    )
    open_orders = {s["order_id"] for s in bike_route["stops"][1:]}

    bike = day["fleet"]["bike"]["id"]
    body = {"at": bodies.at(9, 5).isoformat(), "broken_down": [bike], "time_limit_s": 0.3}
    started = await api.ok("POST", f"/planning-runs/{run_id}/replan", OPERATOR, body)
    replanned = await api.finished_run(started["id"])

    assert replanned["status"] == "completed", replanned["error"]
    assert replanned["summary"]["violations"] == []
    routes = await api.ok("GET", f"/planning-runs/{replanned['id']}/routes", OPERATOR)
    bike = [r for r in routes if r["vehicle_kind"] == "cargo_bike"]
    assert [[(s["order_id"], s["status"]) for s in r["stops"]] for r in bike] == [
        [(bike_route["stops"][0]["order_id"], "done")]
    ]
    elsewhere = {s["order_id"] for r in routes if r["vehicle_kind"] != "cargo_bike" for s in r["stops"]}
    left_out = {u["order_id"] for u in replanned["unassigned"]}
    assert open_orders <= elsewhere | left_out


async def test_a_fresh_plan_of_a_dispatched_day_is_refused_in_favour_of_a_replan(
    api: Any, bodies: SimpleNamespace
) -> None:
    day = await plan_day(api, bodies, orders=2)
    await api.ok("POST", f"/planning-runs/{day['run']['id']}/dispatch", OPERATOR, {})

    again = await api.call(
        "POST", "/planning-runs", OPERATOR, {"delivery_date": bodies.day.date().isoformat()}
    )

    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
