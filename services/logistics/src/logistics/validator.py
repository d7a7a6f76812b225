"""An independent check of plans: recomputes times and loads from the inputs and reports every violation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from logistics.domain import (
    GeoPoint,
    HubPickup,
    Order,
    Plan,
    PlannedStop,
    PlanningRequest,
    Route,
    SpeedProfile,
    StopKind,
    SupplierPickup,
    Vehicle,
)
from logistics.instances import VrptwInstance
from logistics.routing import haversine_m

Travel = Callable[[GeoPoint, GeoPoint, SpeedProfile], int]
EPSILON = 1e-6


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    vehicle_id: str | None = None
    order_id: str | None = None


def haversine_travel(detour_factor: float = 1.3) -> Travel:
    """Seconds between two places the way the offline matrix counts them."""

    def travel(a: GeoPoint, b: GeoPoint, profile: SpeedProfile) -> int:
        return math.ceil(haversine_m(a, b) * detour_factor / (profile.speed_kmh / 3.6))

    return travel


def validate_plan(request: PlanningRequest, plan: Plan, travel: Travel | None = None) -> list[Violation]:
    travel = travel or haversine_travel()
    orders = {o.id: o for o in request.orders}
    vehicles = {v.id: v for v in request.vehicles}
    found: list[Violation] = []
    seen: dict[tuple[str, StopKind], str] = {}
    for route in plan.routes:
        vehicle = vehicles.get(route.vehicle_id)
        if vehicle is None:
            found.append(Violation("unknown_vehicle", "route of an unknown vehicle", route.vehicle_id))
            continue
        for stop in route.stops:
            key = (stop.order_id, stop.kind)
            if key in seen:
                found.append(
                    Violation("visited_twice", f"{stop.kind} planned twice", vehicle.id, stop.order_id)
                )
            seen[key] = vehicle.id
        found += _route_violations(request, orders, vehicle, route, travel)
    found += _coverage(request, plan, seen)
    return found


def _route_violations(
    request: PlanningRequest, orders: dict[str, Order], vehicle: Vehicle, route: Route, travel: Travel
) -> list[Violation]:
    found = _shift(request, vehicle, route, travel)
    found += _stops(request, orders, vehicle, route, travel)
    found += _loads(orders, vehicle, route)
    found += _pairs(orders, vehicle, route)
    return found


def _shift(request: PlanningRequest, vehicle: Vehicle, route: Route, travel: Travel) -> list[Violation]:
    found = []
    if route.departure < vehicle.shift.start:
        found.append(Violation("shift", "leaves before the shift starts", vehicle.id))
    open_stops = [s for s in route.stops if not s.completed]
    last = open_stops[-1].location if open_stops else _start(request, vehicle, route)
    leave = open_stops[-1].departure if open_stops else route.departure
    back = leave + timedelta(
        seconds=travel(last, request.hub(vehicle.end_hub).location, vehicle.speed_profile)
    )
    if back > vehicle.shift.end or route.arrival > vehicle.shift.end:
        found.append(Violation("shift", f"back at {back.isoformat()}, after the shift ends", vehicle.id))
    if route.arrival < back:
        found.append(Violation("timing", "claims to be back sooner than the drive allows", vehicle.id))
    for hub_id, moment in ((vehicle.start_hub, route.departure), (vehicle.end_hub, back)):
        hours = request.hub(hub_id).opening_hours
        if hours and not any(w.contains(moment) for w in hours) and route.start_location is None:
            found.append(
                Violation("hub_closed", f"hub {hub_id} is closed at {moment.isoformat()}", vehicle.id)
            )
    return found


def _start(request: PlanningRequest, vehicle: Vehicle, route: Route) -> GeoPoint:
    return route.start_location or request.hub(vehicle.start_hub).location


def _stops(
    request: PlanningRequest, orders: dict[str, Order], vehicle: Vehicle, route: Route, travel: Travel
) -> list[Violation]:
    found: list[Violation] = []
    here, leave = _start(request, vehicle, route), route.departure
    departed = here != request.hub(vehicle.start_hub).location
    for stop in route.stops:
        order = orders.get(stop.order_id)
        if order is None:
            found.append(Violation("unknown_order", "stop of an unknown order", vehicle.id, stop.order_id))
            continue
        if stop.completed:
            continue
        earliest = leave + timedelta(seconds=travel(here, stop.location, vehicle.speed_profile))
        found += _stop(request, order, vehicle, stop, earliest, departed)
        here, leave = stop.location, stop.departure
    return found


def _stop(
    request: PlanningRequest,
    order: Order,
    vehicle: Vehicle,
    stop: PlannedStop,
    earliest: datetime,
    departed: bool,
) -> list[Violation]:
    found = []

    def report(code: str, message: str) -> None:
        found.append(Violation(code, message, vehicle.id, order.id))

    pickup = isinstance(order.pickup, SupplierPickup) and stop.kind is StopKind.PICKUP
    place = order.pickup.location if isinstance(order.pickup, SupplierPickup) and pickup else order.location
    windows = order.pickup.windows if isinstance(order.pickup, SupplierPickup) and pickup else order.windows
    service = (
        order.pickup.service_s if isinstance(order.pickup, SupplierPickup) and pickup else order.service_s
    )
    if stop.location != place:
        report("location", "the stop is not where the order is")
    if stop.service_start < earliest or stop.arrival < earliest:
        report("timing", f"service at {stop.service_start.isoformat()} before arrival {earliest.isoformat()}")
    if stop.departure < stop.service_start + timedelta(seconds=service):
        report("timing", "leaves before the service time has passed")
    if windows and not any(w.contains(stop.service_start) for w in windows):
        report("time_window", f"service starts at {stop.service_start.isoformat()}, outside every window")
    end = stop.service_start + timedelta(seconds=service)
    for zone in request.zones_at(place):
        if not zone.admits(vehicle, stop.service_start, end):
            report(
                "zone",
                f"zone {zone.id} does not admit a {vehicle.kind} from {stop.service_start.isoformat()}",
            )
    if order.cold_chain and not vehicle.refrigerated:
        report("cold_chain", "a cold-chain order on a vehicle without refrigeration")
    if isinstance(order.pickup, HubPickup) and not departed and order.pickup.hub_id != vehicle.start_hub:
        report("hub", f"goods wait at hub {order.pickup.hub_id}, the vehicle loads at {vehicle.start_hub}")
    return found


def _loads(orders: dict[str, Order], vehicle: Vehicle, route: Route) -> list[Violation]:
    """Deliveries without a pickup on the route were loaded at the start; pickups add, deliveries remove."""
    found = []
    open_stops = [s for s in route.stops if not s.completed and s.order_id in orders]
    picked = {s.order_id for s in open_stops if s.kind is StopKind.PICKUP}
    kg = sum(
        orders[s.order_id].weight_kg
        for s in open_stops
        if s.kind is StopKind.DELIVERY and s.order_id not in picked
    )
    m3 = sum(
        orders[s.order_id].volume_m3
        for s in open_stops
        if s.kind is StopKind.DELIVERY and s.order_id not in picked
    )
    if kg > vehicle.capacity_kg + EPSILON or m3 > vehicle.capacity_m3 + EPSILON:
        found.append(Violation("capacity", f"starts with {kg:.1f} kg, {m3:.2f} m³ on board", vehicle.id))
    for stop in open_stops:
        order = orders[stop.order_id]
        sign = 1 if stop.kind is StopKind.PICKUP else -1
        kg, m3 = kg + sign * order.weight_kg, m3 + sign * order.volume_m3
        if kg > vehicle.capacity_kg + EPSILON or m3 > vehicle.capacity_m3 + EPSILON:
            found.append(Violation("capacity", f"{kg:.1f} kg, {m3:.2f} m³ on board", vehicle.id, order.id))
        if abs(kg - stop.load_kg) > 1e-3 or abs(m3 - stop.load_m3) > 1e-3:
            found.append(
                Violation(
                    "load_profile", "reported load differs from the recomputed one", vehicle.id, order.id
                )
            )
    return found


def _pairs(orders: dict[str, Order], vehicle: Vehicle, route: Route) -> list[Violation]:
    found = []
    position = {(s.order_id, s.kind): i for i, s in enumerate(route.stops)}
    for (order_id, kind), i in position.items():
        order = orders.get(order_id)
        if order is None or kind is not StopKind.DELIVERY or not isinstance(order.pickup, SupplierPickup):
            continue
        if route.stops[i].completed:
            continue
        j = position.get((order_id, StopKind.PICKUP))
        if j is None and not route.stops[i].completed and route.start_location is None:
            found.append(
                Violation("pickup", "delivered without its pickup on the route", vehicle.id, order_id)
            )
        elif j is not None and j > i:
            found.append(Violation("pickup", "delivered before it is picked up", vehicle.id, order_id))
    return found


def _coverage(request: PlanningRequest, plan: Plan, seen: dict[tuple[str, StopKind], str]) -> list[Violation]:
    found = []
    unassigned = {u.order_id for u in plan.unassigned}
    for order in request.orders:
        delivered = (order.id, StopKind.DELIVERY) in seen
        if delivered and order.id in unassigned:
            found.append(Violation("coverage", "both planned and reported unassigned", order_id=order.id))
        if not delivered and order.id not in unassigned:
            found.append(Violation("coverage", "neither planned nor reported unassigned", order_id=order.id))
        picked = seen.get((order.id, StopKind.PICKUP))
        if picked is not None and delivered and picked != seen[(order.id, StopKind.DELIVERY)]:
            found.append(
                Violation("pickup", "picked up and delivered by different vehicles", order_id=order.id)
            )
    return found


def validate_vrptw(instance: VrptwInstance, routes: list[list[int]]) -> list[str]:
    """Classic VRPTW rules with exact Euclidean times; customer numbers as in the file."""
    problems: list[str] = []
    visits = sorted(c for route in routes for c in route)
    if visits != list(range(1, len(instance.customers))):
        problems.append("every customer must be visited exactly once")
    if sum(1 for r in routes if r) > instance.vehicles:
        problems.append(f"more than {instance.vehicles} vehicles")
    for k, route in enumerate(routes):
        problems += [f"route {k}: {p}" for p in _vrptw_route(instance, route)]
    return problems


def _vrptw_route(instance: VrptwInstance, route: list[int]) -> list[str]:
    problems = []
    if sum(instance.customers[c].demand for c in route) > instance.capacity:
        problems.append("over capacity")
    clock, here = instance.depot.ready, 0
    for c in route:
        customer = instance.customers[c]
        clock = max(clock + instance.distance(here, c), customer.ready)
        if clock > customer.due + EPSILON:
            problems.append(f"customer {c} served at {clock:.3f} after its due date {customer.due}")
        clock += customer.service
        here = c
    if route and clock + instance.distance(here, 0) > instance.depot.due + EPSILON:
        problems.append("back at the depot after its due date")
    return problems
