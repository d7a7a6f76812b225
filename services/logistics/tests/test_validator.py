"""The validator catches broken plans: it recomputes instead of trusting what a plan says."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from logistics.domain import AccessRule, GeoPoint, Plan, VehicleKind
from logistics.instances import load_instance
from logistics.validator import validate_plan, validate_vrptw

EAST = GeoPoint(50.9330, 5.3600)
WEST = GeoPoint(50.9250, 5.3200)


def codes(violations: list) -> set[str]:  # type: ignore[type-arg]
    return {v.code for v in violations}


def tamper(plan: Plan, **changes: object) -> Plan:
    route = plan.routes[0]
    stops = (replace(route.stops[0], **changes), *route.stops[1:])  # type: ignore[arg-type]
    return replace(plan, routes=(replace(route, stops=stops), *plan.routes[1:]))


def test_a_stop_moved_outside_its_window_is_reported(hasselt: SimpleNamespace) -> None:
    request = hasselt.request(hasselt.order("o1", EAST, hasselt.window(9, 10)), vehicles=(hasselt.van("v1"),))
    plan = hasselt.solve(request)
    moved = plan.routes[0].stops[0].service_start + timedelta(hours=2)
    found = validate_plan(request, tamper(plan, service_start=moved, departure=moved + timedelta(minutes=2)))
    assert "time_window" in codes(found)


def test_an_arrival_faster_than_the_drive_is_reported(hasselt: SimpleNamespace) -> None:
    request = hasselt.request(hasselt.order("o1", EAST, hasselt.window(6, 17)), vehicles=(hasselt.van("v1"),))
    plan = hasselt.solve(request)
    route = plan.routes[0]
    early = replace(plan, routes=(replace(route, departure=route.stops[0].service_start),))
    assert "timing" in codes(validate_plan(request, early))


def test_overload_zone_breach_and_missing_orders_are_all_reported(hasselt: SimpleNamespace) -> None:
    zone = hasselt.pedestrian_zone(AccessRule(VehicleKind.CARGO_BIKE))
    inside = hasselt.order("inside", GeoPoint(50.9300, 5.3380))
    request = hasselt.request(inside, hasselt.order("o2", WEST), vehicles=(hasselt.van("v1"),))
    plan = hasselt.solve(request)
    forgotten = hasselt.order("forgotten", EAST)
    heavy = replace(
        request,
        vehicles=(hasselt.van("v1", capacity_kg=30.0),),
        zones=(zone,),
        orders=(*request.orders, forgotten),
    )
    found = codes(validate_plan(heavy, plan))
    assert {"capacity", "zone", "coverage"} <= found


def test_vrptw_checker_refuses_a_late_or_incomplete_solution(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/R101.txt")
    everyone = list(range(1, 101))
    problems = validate_vrptw(instance, [everyone])
    assert any("due date" in p for p in problems) and any("capacity" in p for p in problems)
    assert any("exactly once" in p for p in validate_vrptw(instance, [[1, 2]]))
