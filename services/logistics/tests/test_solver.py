"""Each constraint provably holds in the returned plan, as checked by the independent validator."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from logistics.domain import (
    AccessRule,
    GeoPoint,
    Objective,
    Plan,
    PlanningRequest,
    ReplanRequest,
    StopKind,
    StopOutcome,
    StopStatus,
    SupplierPickup,
    UnassignedReason,
    VehicleKind,
    VehicleState,
)
from logistics.instances import load_instance, routing_problem
from logistics.routing import haversine_matrix
from logistics.solver import (
    FirstSolution,
    PlanningSettings,
    Progress,
    SolverSettings,
    layout,
    plan_in_thread,
    solve,
)
from logistics.validator import validate_plan, validate_vrptw

EAST = GeoPoint(50.9330, 5.3600)
WEST = GeoPoint(50.9250, 5.3200)
NORTH = GeoPoint(50.9450, 5.3400)
IN_ZONE = GeoPoint(50.9300, 5.3380)


def valid(request: PlanningRequest, plan: Plan) -> Plan:
    assert validate_plan(request, plan) == []
    return plan


def stop_of(plan: Plan, order_id: str, kind: StopKind = StopKind.DELIVERY) -> tuple[str, int]:
    for route in plan.routes:
        for i, stop in enumerate(route.stops):
            if stop.order_id == order_id and stop.kind is kind:
                return route.vehicle_id, i
    raise AssertionError(f"{order_id} not planned")


def test_delivery_starts_within_one_of_its_windows(hasselt: SimpleNamespace) -> None:
    late = hasselt.order("late", EAST, hasselt.window(7, 8), hasselt.window(14, 15), service_s=300)
    early = hasselt.order("early", WEST, hasselt.window(9, 10))
    request = hasselt.request(late, early, vehicles=(hasselt.van("v1", shift=hasselt.window(8, 18)),))
    plan = valid(request, hasselt.solve(request))
    stops = {s.order_id: s for s in plan.routes[0].stops}
    assert hasselt.at(14) <= stops["late"].service_start <= hasselt.at(15)
    assert hasselt.at(9) <= stops["early"].service_start <= hasselt.at(10)
    assert plan.unassigned == ()


def test_window_outside_every_shift_is_reported_unreachable(hasselt: SimpleNamespace) -> None:
    evening = hasselt.order("evening", EAST, hasselt.window(20, 21))
    request = hasselt.request(evening, vehicles=(hasselt.van("v1"),))
    plan = valid(request, hasselt.solve(request))
    assert [(u.order_id, u.reason) for u in plan.unassigned] == [
        ("evening", UnassignedReason.TIME_WINDOW_UNREACHABLE)
    ]


def test_loads_never_exceed_a_vehicles_weight_or_volume(hasselt: SimpleNamespace) -> None:
    heavy = [hasselt.order(f"h{i}", p, weight_kg=300.0) for i, p in enumerate((EAST, WEST, NORTH))]
    bulky = hasselt.order("bulky", EAST, volume_m3=7.0, weight_kg=10.0)
    request = hasselt.request(
        *heavy, bulky, vehicles=(hasselt.van("v1"), hasselt.van("v2"), hasselt.van("v3"))
    )
    plan = valid(request, hasselt.solve(request))
    assert plan.unassigned == ()
    assert all(r.start_load_kg <= 800 and r.start_load_m3 <= 8 for r in plan.routes)
    assert len(plan.routes) >= 2


def test_an_order_heavier_than_every_vehicle_is_reported_for_capacity(hasselt: SimpleNamespace) -> None:
    pallet = hasselt.order("pallet", EAST, weight_kg=1200.0)
    request = hasselt.request(pallet, hasselt.order("box", WEST), vehicles=(hasselt.van("v1"),))
    plan = valid(request, hasselt.solve(request))
    assert [(u.order_id, u.reason) for u in plan.unassigned] == [("pallet", UnassignedReason.CAPACITY)]


def test_zone_open_to_vans_only_early_gets_a_bike_later_in_the_day(hasselt: SimpleNamespace) -> None:
    zone = hasselt.pedestrian_zone(
        AccessRule(VehicleKind.VAN, (hasselt.window(6, 10),)), AccessRule(VehicleKind.CARGO_BIKE)
    )
    morning = hasselt.order("morning", IN_ZONE, hasselt.window(7, 9))
    noon = hasselt.order("noon", GeoPoint(50.9290, 5.3360), hasselt.window(11, 12))
    request = hasselt.request(
        morning,
        noon,
        hasselt.order("outside", EAST),
        vehicles=(hasselt.van("v1"), hasselt.bike("b1")),
        zones=(zone,),
    )
    plan = valid(request, hasselt.solve(request))
    assert plan.unassigned == ()
    assert stop_of(plan, "noon")[0] == "b1"


def test_van_is_used_in_the_zone_only_inside_its_access_window(hasselt: SimpleNamespace) -> None:
    zone = hasselt.pedestrian_zone(AccessRule(VehicleKind.VAN, (hasselt.window(6, 10),)))
    wide = hasselt.order("wide", IN_ZONE, hasselt.window(7, 17), service_s=600)
    request = hasselt.request(wide, vehicles=(hasselt.van("v1", shift=hasselt.window(9, 18)),), zones=(zone,))
    plan = valid(request, hasselt.solve(request))
    served = plan.routes[0].stops[0]
    assert served.service_start + timedelta(seconds=600) <= hasselt.at(10)


def test_zone_closed_to_every_vehicle_at_the_window_reports_no_allowed_vehicle(
    hasselt: SimpleNamespace,
) -> None:
    zone = hasselt.pedestrian_zone(AccessRule(VehicleKind.VAN, (hasselt.window(6, 10),)))
    noon = hasselt.order("noon", IN_ZONE, hasselt.window(11, 12))
    request = hasselt.request(noon, vehicles=(hasselt.van("v1"),), zones=(zone,))
    plan = valid(request, hasselt.solve(request))
    assert [(u.order_id, u.reason) for u in plan.unassigned] == [
        ("noon", UnassignedReason.NO_ALLOWED_VEHICLE)
    ]


def test_supplier_pickup_comes_before_its_delivery_on_the_same_vehicle(hasselt: SimpleNamespace) -> None:
    supplier = SupplierPickup("Bakkerij", NORTH, (hasselt.window(10, 11),), service_s=300)
    bread = hasselt.order("bread", WEST, hasselt.window(7, 13), pickup=supplier, weight_kg=100.0)
    request = hasselt.request(
        bread, hasselt.order("other", EAST), vehicles=(hasselt.van("v1"), hasselt.van("v2"))
    )
    plan = valid(request, hasselt.solve(request))
    picked_by, picked_at = stop_of(plan, "bread", StopKind.PICKUP)
    delivered_by, delivered_at = stop_of(plan, "bread")
    assert picked_by == delivered_by and picked_at < delivered_at
    route = plan.route_of(picked_by)
    assert route is not None and route.stops[delivered_at].service_start >= hasselt.at(10)


def test_routes_stay_within_the_vehicles_shift(hasselt: SimpleNamespace) -> None:
    orders = [hasselt.order(f"o{i}", p, hasselt.window(6, 18)) for i, p in enumerate((EAST, WEST, NORTH))]
    shift = hasselt.window(10, 12)
    request = hasselt.request(*orders, vehicles=(hasselt.van("v1", shift=shift),))
    plan = valid(request, hasselt.solve(request))
    route = plan.routes[0]
    assert route.departure >= hasselt.at(10) and route.arrival <= hasselt.at(12)
    assert all(hasselt.at(10) <= s.service_start <= hasselt.at(12) for s in route.stops)


def test_fewest_vehicles_objective_uses_one_van_when_one_is_enough(hasselt: SimpleNamespace) -> None:
    orders = [hasselt.order(f"o{i}", p) for i, p in enumerate((EAST, WEST, NORTH, IN_ZONE))]
    fleet = tuple(hasselt.van(f"v{i}") for i in range(4))
    request = hasselt.request(*orders, vehicles=fleet)
    assert request.objective is Objective.VEHICLES_THEN_DISTANCE
    assert len(valid(request, hasselt.solve(request)).routes) == 1


def test_replanning_keeps_completed_stops_and_starts_from_the_vehicles_position(
    hasselt: SimpleNamespace,
) -> None:
    orders = [hasselt.order(f"o{i}", p) for i, p in enumerate((EAST, WEST, NORTH))]
    request = hasselt.request(*orders, vehicles=(hasselt.van("v1"), hasselt.van("v2")))
    first = valid(request, hasselt.solve(request))
    route = first.routes[0]
    done = route.stops[0]
    later = hasselt.order("new", GeoPoint(50.9200, 5.3500))
    replan = ReplanRequest(
        hasselt.request(*orders, later, vehicles=request.vehicles),
        first,
        outcomes=(StopOutcome(done.order_id, StopKind.DELIVERY, StopStatus.DONE, done.departure),),
        states=(VehicleState(route.vehicle_id, done.location, done.departure),),
    )
    second = valid(replan.request, hasselt.solve(replan.request, replan))
    kept = second.route_of(route.vehicle_id)
    assert kept is not None and kept.stops[0] == type(done)(**{**done.__dict__, "completed": True})
    assert [s for s in kept.stops[1:] if s.order_id == done.order_id] == []
    assert kept.start_location == done.location and kept.departure >= done.departure
    planned = {s.order_id for r in second.routes for s in r.stops}
    assert planned == {o.id for o in replan.request.orders}


def test_search_reports_progress_and_stops_when_cancelled(vrp_data: Path) -> None:
    problem = routing_problem(load_instance(vrp_data / "solomon/C101.txt"))
    cancel = threading.Event()
    seen: list[Progress] = []

    def progress(event: Progress) -> None:
        seen.append(event)
        cancel.set()

    started = time.monotonic()
    solve(problem, SolverSettings(time_limit_s=20.0), progress, cancel)
    assert time.monotonic() - started < 5
    assert seen and seen[0].objective > 0 and seen[0].vehicles > 0


def test_r101_gets_a_feasible_plan_from_an_insertion_start(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/R101.txt")
    settings = SolverSettings(
        time_limit_s=1.5, first_solution=FirstSolution.PARALLEL_CHEAPEST_INSERTION, minimise_vehicles=True
    )
    solution = solve(routing_problem(instance), settings)
    routes = [list(r) for r in solution.routes if r]
    assert validate_vrptw(instance, routes) == []
    assert solution.seconds_to_first_solution is not None and solution.seconds_to_first_solution < 1


async def test_planning_runs_off_the_event_loop(hasselt: SimpleNamespace) -> None:
    request = hasselt.request(hasselt.order("o1", EAST), vehicles=(hasselt.van("v1"),))
    profile = request.vehicles[0].speed_profile
    matrices = {profile.name: haversine_matrix(layout(request).points, profile)}
    settings = PlanningSettings(time_limit_s=0.3, deterministic=True)
    plan = await plan_in_thread(request, matrices, settings)
    assert valid(request, plan).routes[0].stops[0].order_id == "o1"
