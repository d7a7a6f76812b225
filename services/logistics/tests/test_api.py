"""The API's rules: roles, tenant isolation, 422 problems naming the field, nothing half-written."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from servicekit.devidp import demo_user_id

OPERATOR = "hasselt.operator"


def fields(problem: dict[str, Any]) -> list[list[Any]]:
    return [error["loc"] for error in problem["errors"]]


async def test_the_operator_builds_the_fleet_and_sees_zones_as_geojson(api: Any) -> None:
    fleet = await api.fleet()

    vehicles = await api.ok("GET", "/vehicles", OPERATOR)
    zones = await api.ok("GET", "/zones", OPERATOR)

    assert {v["kind"] for v in vehicles} == {"van", "cargo_bike"}
    assert zones["type"] == "FeatureCollection"
    [zone] = zones["features"]
    assert zone["geometry"]["type"] == "Polygon"
    assert zone["properties"]["rules"][0] == {"kind": "van", "windows": [{"start": "06:00", "end": "09:00"}]}
    assert fleet["bike"]["driver_id"] == demo_user_id("hasselt.driver")


async def test_an_invalid_zone_polygon_is_refused_naming_the_field_and_nothing_is_written(api: Any) -> None:
    await api.fleet()
    crossing = {
        "type": "Polygon",
        "coordinates": [[[5.33, 50.92], [5.34, 50.93], [5.34, 50.92], [5.33, 50.93], [5.33, 50.92]]],
    }
    body = {"code": "bad", "name": "Bad", "geometry": crossing, "rules": [{"kind": "cargo_bike"}]}

    response = await api.call("POST", "/zones", OPERATOR, body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert fields(response.json()) == [["body", "geometry", "coordinates", 0]]
    assert len((await api.ok("GET", "/zones", OPERATOR))["features"]) == 1


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": [5.3, 50.9]},
        {"type": "Polygon", "coordinates": [[[5.3, 50.9], [5.4, 50.9]]]},
    ],
)
async def test_geometry_that_is_not_a_geojson_polygon_is_422(api: Any, geometry: dict[str, Any]) -> None:
    body = {"code": "z", "name": "Z", "geometry": geometry, "rules": []}

    response = await api.call("POST", "/zones", OPERATOR, body)

    assert response.status_code == 422
    assert fields(response.json())[0][:2] == ["body", "geometry"]


async def test_an_order_window_ending_before_it_starts_is_422_and_no_order_exists(
    api: Any, bodies: SimpleNamespace
) -> None:
    fleet = await api.fleet()
    backwards = [{"start": bodies.at(12).isoformat(), "end": bodies.at(9).isoformat()}]

    response = await api.call(
        "POST", "/orders", OPERATOR, bodies.order(fleet["hub"]["id"], 1, windows=backwards)
    )

    assert response.status_code == 422
    assert fields(response.json()) == [["body", "windows", 0]]
    assert await api.ok("GET", "/orders", OPERATOR) == []
    assert await api.events("OrderPlaced") == []


async def test_a_negative_weight_is_422_naming_weight(api: Any, bodies: SimpleNamespace) -> None:
    fleet = await api.fleet()

    response = await api.call("POST", "/orders", OPERATOR, bodies.order(fleet["hub"]["id"], 1, weight_kg=-3))

    assert response.status_code == 422
    assert fields(response.json()) == [["body", "weight_kg"]]


async def test_an_order_outside_every_reachable_area_is_422(api: Any, bodies: SimpleNamespace) -> None:
    fleet = await api.fleet()

    response = await api.call(
        "POST", "/orders", OPERATOR, bodies.order(fleet["hub"]["id"], 1, 51.2194, 4.4025)
    )

    assert response.status_code == 422
    assert fields(response.json()) == [["body", "recipient", "location"]]


async def test_a_vehicle_without_capacity_or_with_a_backwards_shift_is_422(
    api: Any, bodies: SimpleNamespace
) -> None:
    fleet = await api.fleet()
    hub = fleet["hub"]["id"]

    empty = await api.call("POST", "/vehicles", OPERATOR, bodies.vehicle("v9", "van", hub, capacity_kg=0))
    backwards = {"start": "18:00", "end": "06:00"}
    night = await api.call("POST", "/vehicles", OPERATOR, bodies.vehicle("v8", "van", hub, shift=backwards))

    assert fields(empty.json()) == [["body", "capacity_kg"]]
    assert fields(night.json()) == [["body", "shift", 0]]
    assert len(await api.ok("GET", "/vehicles", OPERATOR)) == 2


async def test_a_vehicle_at_another_municipalitys_hub_is_refused(api: Any, bodies: SimpleNamespace) -> None:
    fleet = await api.fleet()

    response = await api.call(
        "POST", "/vehicles", "geel.operator", bodies.vehicle("g1", "van", fleet["hub"]["id"])
    )

    assert response.status_code == 422
    assert fields(response.json()) == [["body", "start_hub_id"]]


async def test_the_geel_operator_cannot_see_or_touch_hasselts_orders_runs_or_zones(
    api: Any, bodies: SimpleNamespace
) -> None:
    fleet = await api.fleet()
    order = await api.ok("POST", "/orders", OPERATOR, bodies.order(fleet["hub"]["id"], 1))
    run = await api.ok(
        "POST", "/planning-runs", OPERATOR, {"delivery_date": "2026-11-27", "time_limit_s": 0.3}
    )
    await api.finished_run(run["id"])
    geel = "geel.operator"

    assert (await api.call("GET", f"/orders/{order['id']}", geel)).status_code == 404
    assert (await api.call("POST", f"/orders/{order['id']}/cancel", geel, {})).status_code == 404
    assert (await api.call("GET", f"/planning-runs/{run['id']}", geel)).status_code == 404
    assert (await api.call("POST", f"/planning-runs/{run['id']}/dispatch", geel, {})).status_code == 404
    assert (await api.call("GET", f"/zones/{fleet['zone']['id']}", geel)).status_code == 404
    assert await api.ok("GET", "/orders", geel) == []
    assert (await api.ok("GET", f"/orders/{order['id']}", OPERATOR))["status"] == "planned"


async def test_a_shipper_places_and_tracks_only_their_own_orders(api: Any, bodies: SimpleNamespace) -> None:
    fleet = await api.fleet()
    hub = fleet["hub"]["id"]
    theirs = await api.ok("POST", "/orders", OPERATOR, bodies.order(hub, 1))
    body = bodies.order(hub, 2, shipper_id="someone-else")

    mine = await api.ok("POST", "/orders", "hasselt.shipper", body)

    assert mine["shipper_id"] == demo_user_id("hasselt.shipper")
    assert [o["id"] for o in await api.ok("GET", "/orders", "hasselt.shipper")] == [mine["id"]]
    assert (await api.call("GET", f"/orders/{theirs['id']}", "hasselt.shipper")).status_code == 404
    assert (await api.call("POST", "/hubs", "hasselt.shipper", {})).status_code == 403
    assert (
        await api.call("POST", "/planning-runs", "hasselt.shipper", {"delivery_date": "2026-11-27"})
    ).status_code == 403


async def test_a_driver_sees_only_their_own_route(api: Any, bodies: SimpleNamespace) -> None:
    fleet = await api.fleet()
    hub = fleet["hub"]["id"]
    # The bike is hasselt.driver's: a midday order in the ring can only go by bike, a heavy one only by van.
    await api.ok(
        "POST", "/orders", OPERATOR, bodies.order(hub, 1, 50.9300, 5.3380, windows=[bodies.window(11, 15)])
    )
    await api.ok("POST", "/orders", OPERATOR, bodies.order(hub, 2, 50.9480, 5.3000, weight_kg=400))
    run = await api.ok(
        "POST", "/planning-runs", OPERATOR, {"delivery_date": "2026-11-27", "time_limit_s": 0.3}
    )
    await api.finished_run(run["id"])
    routes = await api.ok("POST", f"/planning-runs/{run['id']}/dispatch", OPERATOR, {})
    van_route = next(r for r in routes if r["vehicle_kind"] == "van")
    bike_route = next(r for r in routes if r["vehicle_kind"] == "cargo_bike")

    mine = await api.ok("GET", "/driver/routes", "hasselt.driver")

    assert [r["id"] for r in mine] == [bike_route["id"]]
    assert (await api.call("GET", f"/routes/{van_route['id']}", "hasselt.driver")).status_code == 404
    assert (
        await api.call("POST", f"/routes/{van_route['id']}/stops/0/done", "hasselt.driver", {})
    ).status_code == 404
    assert (await api.call("GET", f"/routes/{bike_route['id']}", "geel.driver")).status_code == 404
    assert (await api.call("GET", "/vehicles", "hasselt.driver")).status_code == 403


async def test_cancelling_an_order_emits_order_cancelled_and_keeps_it_out_of_the_next_plan(
    api: Any, bodies: SimpleNamespace
) -> None:
    fleet = await api.fleet()
    order = await api.ok("POST", "/orders", OPERATOR, bodies.order(fleet["hub"]["id"], 1))

    await api.ok("POST", f"/orders/{order['id']}/cancel", OPERATOR, {"reason": "shop closed"})
    run = await api.ok(
        "POST", "/planning-runs", OPERATOR, {"delivery_date": "2026-11-27", "time_limit_s": 0.3}
    )
    done = await api.finished_run(run["id"])

    assert [e["reason"] for e in await api.events("OrderCancelled")] == ["shop closed"]
    assert done["summary"]["orders_planned"] == 0
    assert (await api.call("POST", f"/orders/{order['id']}/cancel", OPERATOR, {})).status_code == 409


async def test_an_order_no_vehicle_may_deliver_is_left_out_with_the_reason(
    api: Any, bodies: SimpleNamespace
) -> None:
    fleet = await api.fleet()
    # In the ring only until 09:00 for the van; too heavy for the bike.
    await api.ok(
        "POST",
        "/orders",
        OPERATOR,
        bodies.order(fleet["hub"]["id"], 1, weight_kg=300, windows=[bodies.window(12, 15)]),
    )

    run = await api.ok(
        "POST", "/planning-runs", OPERATOR, {"delivery_date": "2026-11-27", "time_limit_s": 0.3}
    )
    done = await api.finished_run(run["id"])

    [left] = done["unassigned"]
    assert left["reason"] in ("capacity", "no_allowed_vehicle", "time_window_unreachable")
    [event] = await api.events("OrderUndeliverable")
    assert event["reason"] == left["reason"]
    assert (await api.ok("GET", f"/orders/{left['order_id']}", OPERATOR))["status"] == "left_out"


async def test_the_hasselt_operator_gets_404_for_geels_order_and_run(
    api: Any, bodies: SimpleNamespace
) -> None:
    fleet = await api.fleet("geel.operator", driver="geel.driver")
    order = await api.ok("POST", "/orders", "geel.operator", bodies.order(fleet["hub"]["id"], 1))
    run = await api.ok(
        "POST", "/planning-runs", "geel.operator", {"delivery_date": "2026-11-27", "time_limit_s": 0.3}
    )
    await api.finished_run(run["id"], "geel.operator")

    assert (await api.call("GET", f"/orders/{order['id']}", OPERATOR)).status_code == 404
    assert (await api.call("POST", f"/planning-runs/{run['id']}/replan", OPERATOR, {})).status_code == 404
    assert (await api.call("GET", f"/planning-runs/{run['id']}/routes", OPERATOR)).status_code == 404
    assert await api.ok("GET", "/vehicles", OPERATOR) == []


async def test_a_wave_plans_only_its_own_orders_and_the_city_admin_sees_the_run(
    api: Any, bodies: SimpleNamespace
) -> None:
    fleet = await api.fleet()
    hub = fleet["hub"]["id"]
    morning = await api.ok("POST", "/orders", OPERATOR, bodies.order(hub, 1, wave="ochtend"))
    await api.ok("POST", "/orders", OPERATOR, bodies.order(hub, 2, wave="middag"))

    body = {"delivery_date": "2026-11-27", "wave": "ochtend", "time_limit_s": 0.3}
    run = await api.finished_run((await api.ok("POST", "/planning-runs", OPERATOR, body))["id"])
    routes = await api.ok("GET", f"/planning-runs/{run['id']}/routes", "hasselt.city_admin")

    assert [s["order_id"] for r in routes for s in r["stops"]] == [morning["id"]]
    assert [
        r["wave"] for r in await api.ok("GET", "/planning-runs?date=2026-11-27", "hasselt.city_admin")
    ] == ["ochtend"]


async def test_placing_an_order_again_with_its_reference_is_the_same_order(
    api: Any, bodies: SimpleNamespace
) -> None:
    hub = (await api.fleet())["hub"]["id"]
    body = bodies.order(hub, 7)

    first = await api.ok("POST", "/orders", "hasselt.shipper", body)
    again = await api.ok("POST", "/orders", "hasselt.shipper", body)
    other = await api.call("POST", "/orders", "hasselt.shipper", {**body, "weight_kg": 99})

    assert again["id"] == first["id"]
    assert [o["id"] for o in await api.ok("GET", "/orders", "hasselt.shipper")] == [first["id"]]
    assert len(await api.events("OrderPlaced")) == 1
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
