"""A day of orders compiled into a routing problem, solved, and decoded into a plan with ETAs and reasons."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from logistics.domain import (
    GeoPoint,
    HubPickup,
    Objective,
    Order,
    Plan,
    PlannedStop,
    PlanningRequest,
    ReplanRequest,
    Route,
    StopKind,
    SupplierPickup,
    TimeWindow,
    UnassignedOrder,
    UnassignedReason,
    Vehicle,
)
from logistics.routing import Matrix
from logistics.solver.search import (
    FirstSolution,
    FleetVehicle,
    Interval,
    Node,
    ProgressCallback,
    RoutingProblem,
    Solution,
    SolverSettings,
    solve,
)

GRAMS_PER_KG = 1000
LITRES_PER_M3 = 1000
# Cost mode works in 1/36000 cent so that both cents per km (per metre: x36) and per hour (per second: x10)
# become integer coefficients.
COST_PER_METRE = 36
COST_PER_SECOND = 10


@dataclass(frozen=True)
class PlanningSettings:
    time_limit_s: float = 10.0
    deterministic: bool = False
    parallel_searches: int = 1
    first_solution: FirstSolution = FirstSolution.PARALLEL_CHEAPEST_INSERTION


@dataclass(frozen=True)
class Layout:
    """The places of a planning run; matrices are computed over `points`, in this order."""

    points: tuple[GeoPoint, ...]
    stops: tuple[tuple[Order, StopKind] | None, ...]
    hub_nodes: Mapping[str, int]
    start_nodes: Mapping[str, int]
    onboard: Mapping[str, str]
    vehicles: tuple[Vehicle, ...]


def layout(request: PlanningRequest, replan: ReplanRequest | None = None) -> Layout:
    """Hubs first, then the vehicles' current positions, then each open order's pickup and delivery."""
    states = {s.vehicle_id: s for s in replan.states} if replan else {}
    vehicles = tuple(v for v in request.vehicles if not (v.id in states and states[v.id].broken_down))
    departed = {v.id for v in vehicles if v.id in states}
    used_hubs = {v.end_hub for v in vehicles} | {v.start_hub for v in vehicles if v.id not in departed}
    points: list[GeoPoint] = []
    stops: list[tuple[Order, StopKind] | None] = []
    hub_nodes: dict[str, int] = {}
    for hub in request.hubs:
        if hub.id in used_hubs:
            hub_nodes[hub.id] = len(points)
            points.append(hub.location)
            stops.append(None)
    start_nodes = {v.id: hub_nodes[v.start_hub] for v in vehicles if v.id not in departed}
    for vehicle_id in sorted(departed, key=[v.id for v in vehicles].index):
        start_nodes[vehicle_id] = len(points)
        points.append(states[vehicle_id].location)
        stops.append(None)
    finished = replan.finished() if replan else set()
    onboard = _onboard(replan, departed) if replan else {}
    for order in request.orders:
        if (order.id, StopKind.DELIVERY) in finished:
            continue
        if isinstance(order.pickup, SupplierPickup) and (order.id, StopKind.PICKUP) not in finished:
            points.append(order.pickup.location)
            stops.append((order, StopKind.PICKUP))
        points.append(order.location)
        stops.append((order, StopKind.DELIVERY))
    return Layout(tuple(points), tuple(stops), hub_nodes, start_nodes, onboard, vehicles)


def _onboard(replan: ReplanRequest, departed: set[str]) -> dict[str, str]:
    """Which vehicle carries each order already loaded: stated by the driver, else read from the old plan."""
    finished = replan.finished()
    onboard: dict[str, str] = {}
    for state in replan.states:
        if state.broken_down:
            continue
        for order_id in state.onboard:
            onboard[order_id] = state.vehicle_id
    stated = {s.vehicle_id for s in replan.states if s.onboard}
    for route in replan.previous.routes:
        if route.vehicle_id not in departed or route.vehicle_id in stated:
            continue
        picked = {s.order_id for s in route.stops if s.kind is StopKind.PICKUP}
        for stop in route.stops:
            if stop.kind is not StopKind.DELIVERY or (stop.order_id, StopKind.DELIVERY) in finished:
                continue
            if stop.order_id not in picked or (stop.order_id, StopKind.PICKUP) in finished:
                onboard[stop.order_id] = route.vehicle_id
    return onboard


@dataclass
class _Compiled:
    problem: RoutingProblem
    layout: Layout
    profiles: tuple[str, ...]
    origin: datetime
    reasons: dict[str, UnassignedReason] = field(default_factory=dict)


class _Compiler:
    """Turns domain rules into node windows, allowed vehicles and per-vehicle access windows."""

    def __init__(
        self,
        request: PlanningRequest,
        places: Layout,
        matrices: Mapping[str, Matrix],
        replan: ReplanRequest | None,
    ) -> None:
        self.request = request
        self.places = places
        self.matrices = matrices
        self.origin = request.origin
        states = {s.vehicle_id: s for s in replan.states} if replan else {}
        self.available = {v: states[v].available_at for v in states}
        self.profiles = tuple(dict.fromkeys(v.speed_profile.name for v in places.vehicles))
        self.horizon = self._horizon()

    def seconds(self, moment: datetime) -> int:
        return min(self.horizon, max(0, int((moment - self.origin).total_seconds())))

    def intervals(self, windows: Sequence[TimeWindow], shrink: int = 0) -> tuple[Interval, ...]:
        """Windows in model seconds, merged and sorted; `shrink` keeps the whole stop inside each window."""
        raw = sorted(
            (self.seconds(w.start), self.seconds(w.end) - shrink)
            for w in windows
            if w.end > self.origin and self.seconds(w.end) - shrink >= self.seconds(w.start)
        )
        merged: list[Interval] = []
        for start, end in raw:
            if merged and start <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return tuple(merged)

    def _horizon(self) -> int:
        ends = [v.shift.end for v in self.request.vehicles]
        ends += [w.end for o in self.request.orders for w in o.windows]
        return max(1, int((max(ends, default=self.origin) - self.origin).total_seconds()) + 1)

    def shift(self, vehicle: Vehicle) -> Interval:
        start, end = vehicle.shift.start, vehicle.shift.end
        start_hub, end_hub = self.request.hub(vehicle.start_hub), self.request.hub(vehicle.end_hub)
        if start_hub.opening_hours:
            start = max(start, min(w.start for w in start_hub.opening_hours))
        if end_hub.opening_hours:
            end = min(end, max(w.end for w in end_hub.opening_hours))
        if vehicle.id in self.available:
            start = max(start, self.available[vehicle.id])
        return self.seconds(start), self.seconds(end)


def compile_problem(
    request: PlanningRequest,
    matrices: Mapping[str, Matrix],
    replan: ReplanRequest | None = None,
) -> _Compiled:
    places = layout(request, replan)
    compiler = _Compiler(request, places, matrices, replan)
    vehicles = _fleet(compiler)
    nodes: list[Node] = []
    pairs: list[Interval] = []
    reasons: dict[str, UnassignedReason] = {}
    penalty_base = _penalty_base(compiler, vehicles)
    for node_id, stop in enumerate(places.stops):
        if stop is None:
            nodes.append(Node(demand=(0, 0)))
            continue
        order, kind = stop
        if kind is StopKind.DELIVERY and nodes and places.stops[node_id - 1] == (order, StopKind.PICKUP):
            pairs.append((node_id - 1, node_id))
        nodes.append(_order_node(compiler, vehicles, order, kind, penalty_base * (order.priority + 1)))
    _exclude_hopeless(compiler, vehicles, nodes, pairs, reasons)
    problem = RoutingProblem(
        nodes=tuple(nodes),
        vehicles=tuple(vehicles),
        distance=tuple(matrices[p].distance_m for p in compiler.profiles),
        duration=tuple(matrices[p].duration_s for p in compiler.profiles),
        horizon=compiler.horizon,
        pairs=tuple(pairs),
    )
    return _Compiled(problem, places, compiler.profiles, request.origin, reasons)


def _fleet(compiler: _Compiler) -> list[FleetVehicle]:
    objective = compiler.request.objective
    by_cost = objective in (Objective.COST, Objective.VEHICLES_THEN_COST)
    fleet = []
    for vehicle in compiler.places.vehicles:
        fleet.append(
            FleetVehicle(
                start=compiler.places.start_nodes[vehicle.id],
                end=compiler.places.hub_nodes[vehicle.end_hub],
                shift=compiler.shift(vehicle),
                capacity=(
                    round(vehicle.capacity_kg * GRAMS_PER_KG),
                    round(vehicle.capacity_m3 * LITRES_PER_M3),
                ),
                profile=compiler.profiles.index(vehicle.speed_profile.name),
                distance_cost=vehicle.cost_per_km_cents * COST_PER_METRE if by_cost else 1,
                time_cost=vehicle.cost_per_hour_cents * COST_PER_SECOND if by_cost else 0,
            )
        )
    if objective in (Objective.VEHICLES_THEN_COST, Objective.VEHICLES_THEN_DISTANCE):
        fixed = _route_cost_bound(compiler, fleet) + 1
        fleet = [FleetVehicle(**{**v.__dict__, "fixed_cost": fixed}) for v in fleet]
    return fleet


def _route_cost_bound(compiler: _Compiler, fleet: Sequence[FleetVehicle]) -> int:
    """More than any set of routes can cost: a vehicle fewer always pays, a dropped order never does."""
    bound = 0
    for vehicle in fleet:
        matrix = compiler.matrices[compiler.profiles[vehicle.profile]].distance_m
        longest = max((max(row) for row in matrix), default=0)
        bound = max(
            bound, longest * vehicle.distance_cost * len(matrix) + vehicle.time_cost * compiler.horizon
        )
    return bound * max(1, len(fleet))


def _penalty_base(compiler: _Compiler, fleet: Sequence[FleetVehicle]) -> int:
    return sum(v.fixed_cost for v in fleet) + _route_cost_bound(compiler, fleet) + 1


def _order_node(
    compiler: _Compiler, fleet: Sequence[FleetVehicle], order: Order, kind: StopKind, penalty: int
) -> Node:
    pickup = kind is StopKind.PICKUP
    assert not pickup or isinstance(order.pickup, SupplierPickup)
    place = order.pickup.location if isinstance(order.pickup, SupplierPickup) and pickup else order.location
    windows = order.pickup.windows if isinstance(order.pickup, SupplierPickup) and pickup else order.windows
    service = (
        order.pickup.service_s if isinstance(order.pickup, SupplierPickup) and pickup else order.service_s
    )
    sign = 1 if pickup else -1
    demand = (sign * round(order.weight_kg * GRAMS_PER_KG), sign * round(order.volume_m3 * LITRES_PER_M3))
    base = compiler.intervals(windows) if windows else ((0, compiler.horizon),)
    allowed: set[int] = set()
    groups: dict[tuple[Interval, ...], set[int]] = {}
    for k, vehicle in enumerate(compiler.places.vehicles):
        if not _may_carry(compiler, vehicle, order, place, pickup):
            continue
        intervals = _access(compiler, vehicle, place, service, base)
        if intervals:
            allowed.add(k)
            if intervals != base:
                groups.setdefault(intervals, set()).add(k)
    return Node(
        windows=base,
        service=service,
        demand=demand,
        allowed_vehicles=frozenset(allowed),
        vehicle_windows=tuple((frozenset(v), i) for i, v in groups.items()),
        penalty=penalty,
    )


def _may_carry(compiler: _Compiler, vehicle: Vehicle, order: Order, place: GeoPoint, pickup: bool) -> bool:
    """Static rules: kind and weight per zone, cold chain, where the goods are loaded."""
    if order.cold_chain and not vehicle.refrigerated:
        return False
    if any(zone.rule_for(vehicle) is None for zone in compiler.request.zones_at(place)):
        return False
    if order.id in compiler.places.onboard:
        return compiler.places.onboard[order.id] == vehicle.id and not pickup
    if isinstance(order.pickup, HubPickup):
        departed = vehicle.id in compiler.available
        return not departed and vehicle.start_hub == order.pickup.hub_id
    return True


def _access(
    compiler: _Compiler, vehicle: Vehicle, place: GeoPoint, service: int, base: tuple[Interval, ...]
) -> tuple[Interval, ...]:
    """The order's windows cut to the times every zone around the place admits the vehicle for the stop."""
    intervals = base
    for zone in compiler.request.zones_at(place):
        rule = zone.rule_for(vehicle)
        if rule is not None and rule.windows:
            intervals = _intersect(intervals, compiler.intervals(rule.windows, shrink=service))
    return intervals


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> tuple[Interval, ...]:
    out = [(max(x0, y0), min(x1, y1)) for x0, x1 in a for y0, y1 in b]
    return tuple(sorted((s, e) for s, e in out if s <= e))


def _exclude_hopeless(
    compiler: _Compiler,
    fleet: Sequence[FleetVehicle],
    nodes: list[Node],
    pairs: list[Interval],
    reasons: dict[str, UnassignedReason],
) -> None:
    """Leave out, with the reason, orders that no vehicle could serve even alone; the search drops them."""
    partner = {d: p for p, d in pairs}
    for node_id, stop in enumerate(compiler.places.stops):
        if stop is None or stop[1] is StopKind.PICKUP:
            continue
        order = stop[0]
        pickup = partner.get(node_id)
        reason = _reason(compiler, fleet, nodes, order, node_id, pickup)
        if reason is not None:
            reasons[order.id] = reason
            for n in (node_id,) if pickup is None else (pickup, node_id):
                nodes[n] = Node(demand=(0, 0), allowed_vehicles=frozenset(), penalty=0)


def _reason(
    compiler: _Compiler,
    fleet: Sequence[FleetVehicle],
    nodes: Sequence[Node],
    order: Order,
    node_id: int,
    pickup: int | None,
) -> UnassignedReason | None:
    node = nodes[node_id]
    candidates = set(node.allowed_vehicles or ())
    if pickup is not None:
        candidates &= set(nodes[pickup].allowed_vehicles or ())
    if not candidates:
        return _why_no_vehicle(compiler, order)
    weight, volume = (abs(d) for d in node.demand)
    candidates = {k for k in candidates if fleet[k].capacity[0] >= weight and fleet[k].capacity[1] >= volume}
    if not candidates:
        return UnassignedReason.CAPACITY
    if not any(_reachable(compiler, fleet[k], k, nodes, node_id, pickup) for k in candidates):
        return UnassignedReason.TIME_WINDOW_UNREACHABLE
    return None


def _why_no_vehicle(compiler: _Compiler, order: Order) -> UnassignedReason:
    if isinstance(order.pickup, HubPickup) and order.id not in compiler.places.onboard:
        loading = [v for v in compiler.places.vehicles if v.id not in compiler.available]
        if not any(v.start_hub == order.pickup.hub_id for v in loading):
            return UnassignedReason.NO_VEHICLE_AT_HUB
    return UnassignedReason.NO_ALLOWED_VEHICLE


def _reachable(
    compiler: _Compiler,
    vehicle: FleetVehicle,
    k: int,
    nodes: Sequence[Node],
    node_id: int,
    pickup: int | None,
) -> bool:
    """Can this vehicle, doing nothing else, serve the order within its windows and its shift?"""
    duration = compiler.matrices[compiler.profiles[vehicle.profile]].duration_s
    clock, here = vehicle.shift[0], vehicle.start
    for n in (node_id,) if pickup is None else (pickup, node_id):
        start = _earliest(_windows_for(nodes[n], k), clock + duration[here][n])
        if start is None:
            return False
        clock, here = start + nodes[n].service, n
    return clock + duration[here][vehicle.end] <= vehicle.shift[1]


def _windows_for(node: Node, k: int) -> tuple[Interval, ...]:
    return next((i for vehicles, i in node.vehicle_windows if k in vehicles), node.windows)


def _earliest(windows: Sequence[Interval], arrival: int) -> int | None:
    return next((max(arrival, s) for s, e in windows if arrival <= e), None)


def plan(
    request: PlanningRequest,
    matrices: Mapping[str, Matrix],
    settings: PlanningSettings | None = None,
    *,
    replan: ReplanRequest | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Plan:
    """Plan (or re-plan, keeping completed stops) the request's orders; blocking and time-bounded."""
    settings = settings or PlanningSettings()
    compiled = compile_problem(request, matrices, replan)
    solver_settings = SolverSettings(
        time_limit_s=settings.time_limit_s,
        first_solution=settings.first_solution,
        minimise_vehicles=False,
        deterministic=settings.deterministic,
        parallel_searches=settings.parallel_searches,
    )
    hint = _hint(compiled, replan) if replan else None
    solution = solve(compiled.problem, solver_settings, on_progress, cancel, hint)
    return _decode(compiled, solution, replan)


async def plan_in_thread(
    request: PlanningRequest,
    matrices: Mapping[str, Matrix],
    settings: PlanningSettings | None = None,
    *,
    replan: ReplanRequest | None = None,
    on_progress: ProgressCallback | None = None,
) -> Plan:
    """`plan` off the event loop; cancelling the awaiting task stops the search at its next solution."""
    cancel = threading.Event()
    try:
        return await asyncio.to_thread(
            plan, request, matrices, settings, replan=replan, on_progress=on_progress, cancel=cancel
        )
    except asyncio.CancelledError:
        cancel.set()
        raise


def _hint(compiled: _Compiled, replan: ReplanRequest) -> list[list[int]]:
    """The previous routes, restricted to the stops still open, as a starting point for the search."""
    node_of = {(stop[0].id, stop[1]): n for n, stop in enumerate(compiled.layout.stops) if stop}
    open_nodes = {n for n, node in enumerate(compiled.problem.nodes) if node.allowed_vehicles}
    routes: list[list[int]] = []
    for k, vehicle in enumerate(compiled.layout.vehicles):
        route = replan.previous.route_of(vehicle.id)
        stops = route.stops if route else ()
        nodes = [node_of.get((s.order_id, s.kind)) for s in stops]
        routes.append([n for n in nodes if n is not None and n in open_nodes and k in _allowed(compiled, n)])
    return routes


def _allowed(compiled: _Compiled, node: int) -> frozenset[int]:
    return compiled.problem.nodes[node].allowed_vehicles or frozenset()


def _decode(compiled: _Compiled, solution: Solution, replan: ReplanRequest | None) -> Plan:
    problem, places = compiled.problem, compiled.layout
    routes = []
    for k, vehicle in enumerate(places.vehicles):
        done = _completed(replan, vehicle.id)
        if not solution.routes[k] and not done:
            continue
        routes.append(_route(compiled, solution, k, vehicle, done))
    routes += _stopped(places, replan)
    served = {s.order_id for r in routes for s in r.stops if s.kind is StopKind.DELIVERY}
    unassigned = [
        UnassignedOrder(stop[0].id, compiled.reasons.get(stop[0].id, UnassignedReason.FLEET_EXHAUSTED))
        for stop in places.stops
        if stop and stop[1] is StopKind.DELIVERY and stop[0].id not in served
    ]
    return Plan(tuple(routes), tuple(unassigned), solution.objective if problem.nodes else 0)


def _stopped(places: Layout, replan: ReplanRequest | None) -> list[Route]:
    """Vehicles out of service keep the stops they completed before they broke down, and nothing more."""
    if replan is None:
        return []
    running = {v.id for v in places.vehicles}
    kept = []
    for route in replan.previous.routes:
        done = _completed(replan, route.vehicle_id)
        if route.vehicle_id not in running and done:
            kept.append(Route(**{**route.__dict__, "stops": done}))
    return kept


def _completed(replan: ReplanRequest | None, vehicle_id: str) -> tuple[PlannedStop, ...]:
    if replan is None:
        return ()
    route = replan.previous.route_of(vehicle_id)
    finished = replan.finished()
    if route is None:
        return ()
    return tuple(
        PlannedStop(**{**s.__dict__, "completed": True})
        for s in route.stops
        if (s.order_id, s.kind) in finished
    )


def _route(
    compiled: _Compiled, solution: Solution, k: int, vehicle: Vehicle, done: tuple[PlannedStop, ...]
) -> Route:
    problem, places = compiled.problem, compiled.layout
    fleet = problem.vehicles[k]
    nodes, starts = solution.routes[k], solution.service_starts[k]
    distance, duration = problem.distance[fleet.profile], problem.duration[fleet.profile]
    origin = compiled.origin
    paired = {d for p, d in problem.pairs if p in nodes}
    load = [
        -sum(problem.nodes[n].demand[d] for n in nodes if problem.nodes[n].demand[d] < 0 and n not in paired)
        for d in (0, 1)
    ]
    start_load = tuple(load)
    stops, here, leave = [], fleet.start, solution.departures[k]
    metres = 0
    for n, start in zip(nodes, starts, strict=True):
        order, kind = places.stops[n] or (None, None)
        assert order is not None and kind is not None
        arrival = leave + duration[here][n]
        metres += distance[here][n]
        load = [load[d] + problem.nodes[n].demand[d] for d in (0, 1)]
        leave = start + problem.nodes[n].service
        stops.append(
            PlannedStop(
                order.id,
                kind,
                places.points[n],
                origin + timedelta(seconds=arrival),
                origin + timedelta(seconds=start),
                origin + timedelta(seconds=leave),
                load[0] / GRAMS_PER_KG,
                load[1] / LITRES_PER_M3,
            )
        )
        here = n
    back = leave + duration[here][fleet.end] if nodes else solution.departures[k]
    metres += distance[here][fleet.end] if nodes else 0
    departure = origin + timedelta(seconds=solution.departures[k])
    return Route(
        vehicle_id=vehicle.id,
        start_hub=vehicle.start_hub,
        end_hub=vehicle.end_hub,
        departure=departure,
        arrival=origin + timedelta(seconds=back),
        stops=(*done, *stops),
        distance_m=metres,
        duration_s=back - solution.departures[k],
        start_load_kg=start_load[0] / GRAMS_PER_KG,
        start_load_m3=start_load[1] / LITRES_PER_M3,
        start_location=places.points[fleet.start],
    )
