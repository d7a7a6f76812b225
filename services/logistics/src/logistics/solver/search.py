"""OR-Tools search over an integer routing problem: time-limited, cancellable, with route minimisation."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum

from ortools.constraint_solver import pywrapcp, routing_enums_pb2, routing_parameters_pb2
from ortools.util.optional_boolean_pb2 import OptionalBoolean

from logistics.solver import ejection, lns

Interval = tuple[int, int]
NEIGHBOURHOOD = 150
LARGE = 600
# Room the relaxed model of route elimination leaves for late visits, in multiples of the horizon.
LATE_ROOM = 3
# Share of the time limit: the construction phase at least (it goes on until every visit has a place, up to a
# quarter), then route elimination until ELIMINATE_UNTIL, each attempt on one route at most ELIMINATION_SHARE.
CONSTRUCT_SHARE = 0.25
ELIMINATE_UNTIL = 0.7
ELIMINATION_SHARE = 0.13
# Attempts at spreading one route over the others: (cost per unit of lateness, guided search weight). Lateness
# at a heavy cost first, then again from the least late routes with a heavier penalty weight, which reweighs
# the moves so that it does not retrace the first try; last with strict windows (0), leaving visits out.
ATTEMPTS = ((1000, 0.1), (1000, 0.5), (0, 0.5))
# With the ejection pool (plain time-window problems): construction stops at the first complete plan after
# this share (the guided search before the pool makes for shorter routes after it: r1_2_1 about 3% above the
# best known with 0.12, 5-7% when the pool starts at once), the pool removes routes until
# POOL_ELIMINATE_UNTIL, the rest polishes distance. In deterministic
# mode the pool takes at most this many steps per solution of the solution limit.
POOL_CONSTRUCT_SHARE = 0.12
POOL_ELIMINATE_UNTIL = 0.4
POOL_STEPS_PER_SOLUTION = 1
# A route removal that does not succeed within the settings' attempt share of the time limit (or this many
# times as long as the removal before it took) ends route elimination.
POOL_ATTEMPT_GROWTH = 3.0
POOL_DESCENT_SHARE = 0.1
POOL_LATE_SHARE = 0.3
# Where string removals apply (plain time-window problems, every visit placed): guided search polishes
# distance for this share of the time limit; then, in each of STRING_ROUNDS rounds, string removals go on from
# the best plan but for the last CHECK_SHARE of the round, in which guided search polishes and checks their
# plan on the strict model. In deterministic mode string removals take this many steps per solution of the
# solution limit.
GUIDED_SHARE = 0.08
CHECK_SHARE = 0.05
STRING_ROUNDS = 3
STRING_STEPS_PER_SOLUTION = 20
VARIANT_CONSTRUCT_SHARE = 0.25
VARIANT_ATTEMPT_SHARE = 0.03
# Local-search operators that make visits active or inactive: of no use once every visit is in a route.
ACTIVITY_OPERATORS = (
    "use_make_active",
    "use_make_inactive",
    "use_make_chain_inactive",
    "use_swap_active",
    "use_global_cheapest_insertion_path_lns",
    "use_local_cheapest_insertion_path_lns",
    "use_relocate_path_global_cheapest_insertion_insert_unperformed",
    "use_shortest_path_swap_active",
    "use_swap_active_chain",
    "use_global_cheapest_insertion_visit_types_lns",
    "use_local_cheapest_insertion_visit_types_lns",
)


@dataclass(frozen=True)
class Node:
    """A place in the model; `windows` bound a visit's start of service, `penalty` lets it be dropped."""

    windows: tuple[Interval, ...] = ()
    service: int = 0
    demand: tuple[int, ...] = ()
    allowed_vehicles: frozenset[int] | None = None
    vehicle_windows: tuple[tuple[frozenset[int], tuple[Interval, ...]], ...] = ()
    penalty: int | None = None


@dataclass(frozen=True)
class FleetVehicle:
    start: int
    end: int
    shift: Interval
    capacity: tuple[int, ...]
    profile: int = 0
    fixed_cost: int = 0
    distance_cost: int = 1
    time_cost: int = 0


@dataclass(frozen=True)
class RoutingProblem:
    """Integer data: `distance[p]` and `duration[p]` are node-by-node matrices of speed profile p."""

    nodes: tuple[Node, ...]
    vehicles: tuple[FleetVehicle, ...]
    distance: tuple[list[list[int]], ...]
    duration: tuple[list[list[int]], ...]
    horizon: int
    pairs: tuple[Interval, ...] = ()

    @property
    def depots(self) -> frozenset[int]:
        return frozenset(v.start for v in self.vehicles) | frozenset(v.end for v in self.vehicles)

    @property
    def dimensions(self) -> int:
        return len(self.vehicles[0].capacity) if self.vehicles else 0


class FirstSolution(StrEnum):
    PARALLEL_CHEAPEST_INSERTION = "PARALLEL_CHEAPEST_INSERTION"
    LOCAL_CHEAPEST_INSERTION = "LOCAL_CHEAPEST_INSERTION"
    SEQUENTIAL_CHEAPEST_INSERTION = "SEQUENTIAL_CHEAPEST_INSERTION"
    SAVINGS = "SAVINGS"
    PATH_CHEAPEST_ARC = "PATH_CHEAPEST_ARC"


@dataclass(frozen=True)
class SolverSettings:
    """`deterministic` bounds the search by a solution count, the clock staying a safety cap."""

    time_limit_s: float = 10.0
    first_solution: FirstSolution = FirstSolution.PARALLEL_CHEAPEST_INSERTION
    minimise_vehicles: bool = False
    deterministic: bool = False
    solution_limit: int = 2000
    parallel_searches: int = 1
    guided_local_search_lambda: float = 0.1
    iterated_local_search: bool = False
    seed: int = 0
    # Share of the time limit after which construction stops at its first plan visiting everyone (None: the
    # default of the route elimination used).
    construct_share: float | None = None
    # Share of the time limit the ejection pool has at least for removing one more route.
    attempt_share: float = 0.1


@dataclass(frozen=True)
class Progress:
    objective: int
    elapsed_s: float
    vehicles: int
    phase: str


@dataclass(frozen=True)
class Solution:
    """Per vehicle the visited nodes in order (depots left out); dropped visit nodes; timing of the search."""

    routes: tuple[tuple[int, ...], ...]
    dropped: tuple[int, ...]
    objective: int
    service_starts: tuple[tuple[int, ...], ...] = ()
    departures: tuple[int, ...] = ()
    seconds_to_first_solution: float | None = None
    elapsed_s: float = 0.0

    @property
    def vehicles_used(self) -> int:
        return sum(1 for route in self.routes if route)


ProgressCallback = Callable[[Progress], None]


class NoSolution(RuntimeError):
    """The search found no assignment within its limits."""


@dataclass
class _Clock:
    started: float = field(default_factory=time.monotonic)
    first_solution: float | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class _Model:
    """One OR-Tools model of a problem over a subset of its vehicles."""

    def __init__(
        self, problem: RoutingProblem, vehicles: Sequence[int], fixed_costs: bool, lateness_cost: int = 0
    ) -> None:
        self.problem = problem
        self.vehicle_ids = list(vehicles)
        # With a lateness cost, a visit with one window and no per-vehicle access windows may start late at
        # that cost per unit: the search then repairs time windows step by step instead of facing a wall.
        self.lateness_cost = lateness_cost
        self.due: dict[int, int] = {}
        self.due_back: dict[int, int] = {}
        fleet = [problem.vehicles[v] for v in self.vehicle_ids]
        self.manager = pywrapcp.RoutingIndexManager(
            len(problem.nodes), len(fleet), [v.start for v in fleet], [v.end for v in fleet]
        )
        self.routing = pywrapcp.RoutingModel(self.manager)
        self._costs(fleet, fixed_costs)
        self.time = self._time_dimension(fleet)
        self._capacities(fleet)
        self._visits()
        self._pairs()

    def _costs(self, fleet: Sequence[FleetVehicle], fixed_costs: bool) -> None:
        registered: dict[tuple[int, int], int] = {}
        for k, vehicle in enumerate(fleet):
            key = (vehicle.profile, vehicle.distance_cost)
            if key not in registered:
                matrix = self.problem.distance[vehicle.profile]
                if vehicle.distance_cost != 1:
                    matrix = [[d * vehicle.distance_cost for d in row] for row in matrix]
                registered[key] = self.routing.RegisterTransitMatrix(matrix)
            self.routing.SetArcCostEvaluatorOfVehicle(registered[key], k)
            if fixed_costs and vehicle.fixed_cost:
                self.routing.SetFixedCostOfVehicle(vehicle.fixed_cost, k)

    def _time_dimension(self, fleet: Sequence[FleetVehicle]) -> pywrapcp.RoutingDimension:
        service = [n.service for n in self.problem.nodes]
        by_profile: dict[int, int] = {}
        for vehicle in fleet:
            if vehicle.profile not in by_profile:
                matrix = [
                    [service[i] + d for d in row]
                    for i, row in enumerate(self.problem.duration[vehicle.profile])
                ]
                by_profile[vehicle.profile] = self.routing.RegisterTransitMatrix(matrix)
        horizon = self.problem.horizon
        # Late visits may push a route past the horizon: the relaxed model has room for that, at a cost.
        self.limit = horizon * (LATE_ROOM if self.lateness_cost else 1)
        self.routing.AddDimensionWithVehicleTransits(
            [by_profile[v.profile] for v in fleet], horizon, self.limit, False, "time"
        )
        dimension = self.routing.GetDimensionOrDie("time")
        for k, vehicle in enumerate(fleet):
            start, end = self.routing.Start(k), self.routing.End(k)
            dimension.CumulVar(start).SetRange(*vehicle.shift)
            if self.lateness_cost:
                dimension.CumulVar(end).SetRange(vehicle.shift[0], self.limit)
                dimension.SetCumulVarSoftUpperBound(end, vehicle.shift[1], self.lateness_cost)
                self.due_back[end] = vehicle.shift[1]
            else:
                dimension.CumulVar(end).SetRange(*vehicle.shift)
            if vehicle.time_cost:
                dimension.SetSpanCostCoefficientForVehicle(vehicle.time_cost, k)
            self.routing.AddVariableMaximizedByFinalizer(dimension.CumulVar(start))
            self.routing.AddVariableMinimizedByFinalizer(dimension.CumulVar(end))
        return dimension

    def _capacities(self, fleet: Sequence[FleetVehicle]) -> None:
        signed = bool(self.problem.pairs) or (
            any(d < 0 for n in self.problem.nodes for d in n.demand)
            and any(d > 0 for n in self.problem.nodes for d in n.demand)
        )
        for dim in range(self.problem.dimensions):
            demand = [n.demand[dim] if n.demand else 0 for n in self.problem.nodes]
            if not signed:
                # Pure deliveries: counting what has been handed over is equivalent and propagates better.
                demand = [abs(d) for d in demand]
            index = self.routing.RegisterUnaryTransitVector(demand)
            self.routing.AddDimensionWithVehicleCapacity(
                index, 0, [v.capacity[dim] for v in fleet], not signed, f"load{dim}"
            )

    def _visits(self) -> None:
        solver = self.routing.solver()
        position = {v: k for k, v in enumerate(self.vehicle_ids)}
        depots = self.problem.depots
        for node_id, node in enumerate(self.problem.nodes):
            if node_id in depots:
                continue
            index = self.manager.NodeToIndex(node_id)
            cumul = self.time.CumulVar(index)
            windows = node.windows or ((0, self.problem.horizon),)
            if self.lateness_cost and len(windows) == 1 and not node.vehicle_windows:
                cumul.SetRange(windows[0][0], self.limit)
                self.time.SetCumulVarSoftUpperBound(index, windows[0][1], self.lateness_cost)
                self.due[index] = windows[0][1]
            else:
                cumul.SetRange(windows[0][0], windows[-1][1])
            for (_, end), (start, _) in itertools.pairwise(windows):
                if start - end > 1:
                    cumul.RemoveInterval(end + 1, start - 1)
            if node.allowed_vehicles is not None:
                allowed = [position[v] for v in sorted(node.allowed_vehicles) if v in position]
                if not allowed:
                    # An empty list would mean "any vehicle": keep the visit out of every route instead.
                    self.routing.AddDisjunction([index], node.penalty or 0)
                    self.routing.ActiveVar(index).SetValue(0)
                    continue
                # SetAllowedVehiclesForIndex's Python binding rejects every list: restrict the variable.
                self.routing.VehicleVar(index).SetValues([-1, *allowed])
            for vehicles, intervals in node.vehicle_windows:
                members = [position[v] for v in sorted(vehicles) if v in position]
                if not members:
                    continue
                on_vehicle = solver.IsMemberVar(self.routing.VehicleVar(index), members)
                for lo, hi in _gaps(intervals, windows[0][0], windows[-1][1]):
                    solver.Add(on_vehicle + solver.IsBetweenVar(cumul, lo, hi) <= 1)
            if node.penalty is not None:
                self.routing.AddDisjunction([index], node.penalty)

    def _pairs(self) -> None:
        solver = self.routing.solver()
        for pickup, delivery in self.problem.pairs:
            p, d = self.manager.NodeToIndex(pickup), self.manager.NodeToIndex(delivery)
            self.routing.AddPickupAndDelivery(p, d)
            solver.Add(self.routing.VehicleVar(p) == self.routing.VehicleVar(d))
            solver.Add(self.routing.ActiveVar(p) == self.routing.ActiveVar(d))
            solver.Add(self.time.CumulVar(p) <= self.time.CumulVar(d))

    def lateness(self) -> int:
        """Inside a solution callback: the lateness of all visits and returns so far."""
        late = sum(max(0, self.time.CumulVar(index).Min() - due) for index, due in self.due_back.items())
        late += sum(
            max(0, self.time.CumulVar(index).Min() - due)
            for index, due in self.due.items()
            if self.routing.ActiveVar(index).Value()
        )
        return int(late)

    def current_routes(self) -> tuple[tuple[int, ...], ...]:
        """Inside a solution callback: the visited nodes per problem vehicle."""
        routes: list[tuple[int, ...]] = [() for _ in self.problem.vehicles]
        for k, vehicle in enumerate(self.vehicle_ids):
            route, index = [], self.routing.NextVar(self.routing.Start(k)).Value()
            while not self.routing.IsEnd(index):
                route.append(self.manager.IndexToNode(index))
                index = self.routing.NextVar(index).Value()
            routes[vehicle] = tuple(route)
        return tuple(routes)

    def decode(self, assignment: pywrapcp.Assignment, clock: _Clock) -> Solution:
        routes: list[tuple[int, ...]] = [() for _ in self.problem.vehicles]
        starts: list[tuple[int, ...]] = [() for _ in self.problem.vehicles]
        departures = [v.shift[0] for v in self.problem.vehicles]
        for k, vehicle in enumerate(self.vehicle_ids):
            index = assignment.Value(self.routing.NextVar(self.routing.Start(k)))
            departures[vehicle] = assignment.Value(self.time.CumulVar(self.routing.Start(k)))
            route, route_starts = [], []
            while not self.routing.IsEnd(index):
                route.append(self.manager.IndexToNode(index))
                route_starts.append(assignment.Value(self.time.CumulVar(index)))
                index = assignment.Value(self.routing.NextVar(index))
            routes[vehicle], starts[vehicle] = tuple(route), tuple(route_starts)
        visited = {n for route in routes for n in route}
        dropped = tuple(
            n for n in range(len(self.problem.nodes)) if n not in self.problem.depots and n not in visited
        )
        return Solution(
            tuple(routes),
            dropped,
            assignment.ObjectiveValue(),
            tuple(starts),
            tuple(departures),
            None if clock.first_solution is None else clock.first_solution,
            clock.elapsed(),
        )


def _gaps(intervals: Sequence[Interval], lo: int, hi: int) -> list[Interval]:
    """The parts of [lo, hi] outside the sorted `intervals`."""
    gaps, cursor = [], lo
    for start, end in intervals:
        if start > cursor:
            gaps.append((cursor, min(start - 1, hi)))
        cursor = max(cursor, end + 1)
    if cursor <= hi:
        gaps.append((cursor, hi))
    return [(a, b) for a, b in gaps if a <= b]


def _parameters(
    settings: SolverSettings, seconds: float, nodes: int
) -> pywrapcp.DefaultRoutingSearchParameters:
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    if nodes > LARGE:
        # Insertion over every pair of nodes is quadratic: on large instances consider close neighbours only.
        # (Restricting the local-search operators the same way cost 30% in distance on 200 customers.)
        ratio = NEIGHBOURHOOD / nodes
        parameters.global_cheapest_insertion_first_solution_parameters.neighbors_ratio = ratio
        parameters.global_cheapest_insertion_first_solution_parameters.min_neighbors = 20
    # Insertion over a large fleet takes seconds per hundred visits; savings builds a start far sooner.
    first = FirstSolution.SAVINGS if nodes > LARGE else settings.first_solution
    parameters.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, first.value)
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.guided_local_search_lambda_coefficient = settings.guided_local_search_lambda
    if settings.iterated_local_search:
        _ruin_and_recreate(parameters)
    parameters.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
    if settings.deterministic:
        parameters.solution_limit = settings.solution_limit
    return parameters


def _ruin_and_recreate(parameters: routing_parameters_pb2.RoutingSearchParameters) -> None:
    """Iterated local search: remove strings of nearby visits (SISR), reinsert them, accept by annealing."""
    parameters.use_iterated_local_search = True
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
    ils = parameters.iterated_local_search_parameters
    ruin = ils.ruin_recreate_parameters.ruin_strategies.add()
    ruin.sisr.max_removed_sequence_size = 10
    ruin.sisr.avg_num_removed_visits = 10
    ruin.sisr.bypass_factor = 0.01
    ils.reference_solution_acceptance_strategy.simulated_annealing.automatic_temperatures = True


class _Search:
    """One search thread of control: phases share the clock, the progress callback and cancellation."""

    def __init__(
        self,
        problem: RoutingProblem,
        settings: SolverSettings,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        self.problem = problem
        self.settings = settings
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.clock = _Clock()

    def remaining(self) -> float:
        return self.settings.time_limit_s - self.clock.elapsed()

    def run(
        self,
        vehicles: Sequence[int],
        seconds: float,
        phase: str,
        hint: Sequence[Sequence[int]] | None = None,
        fixed_costs: bool = True,
        guided_lambda: float | None = None,
        first_only: bool = False,
        complete_after: float | None = None,
        visits_fixed: bool = False,
    ) -> Solution | None:
        """`complete_after`: stop at the first solution visiting every node found after that many seconds.
        `visits_fixed`: the hint visits every node and so shall every plan: the local search leaves out the
        moves that add or remove visits (on 400 visits the search then gets about twice as far)."""
        model = _Model(self.problem, vehicles, fixed_costs)
        settings = self.settings
        if guided_lambda is not None:
            settings = replace(settings, guided_local_search_lambda=guided_lambda)
        parameters = _parameters(settings, max(0.05, seconds), len(self.problem.nodes))
        if first_only:
            parameters.solution_limit = 1
        if visits_fixed:
            operators = parameters.local_search_operators
            for name in ACTIVITY_OPERATORS:
                setattr(operators, name, OptionalBoolean.BOOL_FALSE)
        model.routing.CloseModelWithParameters(parameters)
        routing = model.routing
        phase_start = self.clock.elapsed()

        def at_solution() -> None:
            if self.clock.first_solution is None:
                self.clock.first_solution = self.clock.elapsed()
            if self.on_progress is not None:
                used = sum(
                    1
                    for k in range(len(vehicles))
                    if not routing.IsEnd(routing.NextVar(routing.Start(k)).Value())
                )
                self.on_progress(Progress(routing.CostVar().Value(), self.clock.elapsed(), used, phase))
            if self.cancel.is_set():
                routing.CancelSearch()
            elif complete_after is not None and self.clock.elapsed() - phase_start >= complete_after:
                visits = len(self.problem.nodes) - len(self.problem.depots)
                if sum(len(r) for r in model.current_routes()) == visits:
                    routing.CancelSearch()

        routing.AddAtSolutionCallback(at_solution)
        assignment = None
        if hint is not None:
            position = {v: k for k, v in enumerate(vehicles)}
            routes: list[list[int]] = [[] for _ in vehicles]
            for vehicle, route in zip(range(len(hint)), hint, strict=True):
                if vehicle in position:
                    routes[position[vehicle]] = [model.manager.NodeToIndex(n) for n in route]
            start = routing.ReadAssignmentFromRoutes(routes, True)
            if start is not None:
                assignment = routing.SolveFromAssignmentWithParameters(start, parameters)
        if assignment is None:
            assignment = routing.SolveWithParameters(parameters)
        return None if assignment is None else model.decode(assignment, self.clock)

    def squeeze(
        self,
        vehicles: Sequence[int],
        seconds: float,
        hint: Sequence[Sequence[int]],
        dropped: int,
        lateness_cost: int,
        guided_lambda: float,
    ) -> tuple[tuple[tuple[int, ...], ...] | None, Sequence[Sequence[int]]]:
        """Routes over `vehicles` that visit all but at most `dropped` nodes on time, searched with lateness
        allowed at a cost, or None when the time runs out first; and the least late such routes seen, from
        which a further try may go on."""
        model = _Model(self.problem, vehicles, False, lateness_cost=lateness_cost)
        settings = replace(self.settings, guided_local_search_lambda=guided_lambda)
        parameters = _parameters(settings, max(0.05, seconds), len(self.problem.nodes))
        routing = model.routing
        routing.CloseModelWithParameters(parameters)
        depots = self.problem.depots
        found: list[tuple[tuple[int, ...], ...]] = []
        closest: list[tuple[int, Sequence[Sequence[int]]]] = [(-1, hint)]

        def at_solution() -> None:
            routes = model.current_routes()
            used = sum(1 for r in routes if r)
            if self.on_progress is not None:
                self.on_progress(Progress(routing.CostVar().Value(), self.clock.elapsed(), used, "eliminate"))
            visited = sum(len(r) for r in routes)
            if len(self.problem.nodes) - len(depots) - visited <= dropped:
                late = model.lateness()
                if not late:
                    found.append(routes)
                    routing.CancelSearch()
                elif closest[0][0] < 0 or late < closest[0][0]:
                    closest[0] = (late, routes)
            if self.cancel.is_set():
                routing.CancelSearch()

        routing.AddAtSolutionCallback(at_solution)
        position = {v: k for k, v in enumerate(vehicles)}
        start = None
        starts = [_insert_late(self.problem, vehicles, hint)] if lateness_cost else []
        for routes in (*starts, hint):
            start_routes: list[list[int]] = [[] for _ in vehicles]
            for vehicle, route in enumerate(routes):
                if vehicle in position:
                    start_routes[position[vehicle]] = [model.manager.NodeToIndex(n) for n in route]
            start = routing.ReadAssignmentFromRoutes(start_routes, True)
            if start is not None:
                break
        if start is None:
            return None, hint
        routing.SolveFromAssignmentWithParameters(start, parameters)
        return (found[-1] if found else None), closest[0][1]


def _insert_late(
    problem: RoutingProblem, vehicles: Sequence[int], routes: Sequence[Sequence[int]]
) -> list[list[int]]:
    """The visits missing from `routes` (one window, no pairs) each inserted where it adds the least lateness,
    then distance, within capacity and the vehicles allowed: a complete start for the relaxed model."""
    result = [list(route) if v in vehicles else [] for v, route in enumerate(routes)]
    if problem.pairs or any(d < 0 for n in problem.nodes for d in n.demand):
        return result
    visited = {n for route in result for n in route}
    depots = problem.depots
    missing = [
        n
        for n, node in enumerate(problem.nodes)
        if n not in visited and n not in depots and len(node.windows) <= 1 and not node.vehicle_windows
    ]
    for n in missing:
        node = problem.nodes[n]
        best: tuple[tuple[int, int], int, int] | None = None
        for v in vehicles:
            if node.allowed_vehicles is not None and v not in node.allowed_vehicles:
                continue
            vehicle, route = problem.vehicles[v], result[v]
            loads = [sum(problem.nodes[m].demand[d] for m in route) for d in range(problem.dimensions)]
            if any(load + node.demand[d] > vehicle.capacity[d] for d, load in enumerate(loads)):
                continue
            for i in range(len(route) + 1):
                score = _lateness(problem, vehicle, [*route[:i], n, *route[i:]])
                if best is None or score < best[0]:
                    best = (score, v, i)
        if best is not None:
            result[best[1]].insert(best[2], n)
    return result


def _lateness(problem: RoutingProblem, vehicle: FleetVehicle, route: Sequence[int]) -> tuple[int, int]:
    """Total lateness (back at the end included) and distance of a route served as early as possible."""
    duration, distance = problem.duration[vehicle.profile], problem.distance[vehicle.profile]
    clock, here, late, metres = vehicle.shift[0], vehicle.start, 0, 0
    for n in route:
        node = problem.nodes[n]
        window = node.windows[0] if node.windows else (0, problem.horizon)
        clock = max(clock + duration[here][n], window[0])
        late += max(0, clock - window[1])
        metres += distance[here][n]
        clock += node.service
        here = n
    clock += duration[here][vehicle.end]
    return late + max(0, clock - vehicle.shift[1]), metres + distance[here][vehicle.end]


def solve(
    problem: RoutingProblem,
    settings: SolverSettings,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    hint: Sequence[Sequence[int]] | None = None,
) -> Solution:
    """Plan within `settings.time_limit_s`; raise NoSolution when nothing was found."""
    if settings.parallel_searches > 1 and hint is None:
        return _solve_in_processes(problem, settings)
    search = _Search(problem, settings, on_progress, cancel)
    everyone = range(len(problem.vehicles))
    if not settings.minimise_vehicles:
        solution = search.run(everyone, settings.time_limit_s, "search", hint)
    else:
        solution = _classic(search, hint)
    if solution is None:
        raise NoSolution("no plan found within the time limit")
    return replace(solution, elapsed_s=search.clock.elapsed())


def _classic(search: _Search, hint: Sequence[Sequence[int]] | None) -> Solution | None:
    """Fewest vehicles first: construct, remove routes one by one, then polish distance on the survivors."""
    total = search.settings.time_limit_s
    large = len(search.problem.nodes) > LARGE
    pooled = ejection.applicable(search.problem)
    if pooled and search.settings.construct_share is None:
        search.settings = replace(search.settings, construct_share=POOL_CONSTRUCT_SHARE)
    # The start may leave visits out; the search goes on until it has them all (or the time share is spent).
    # The ejection pool removes routes far faster than guided search does: it needs a complete start only.
    best = search.run(
        range(len(search.problem.vehicles)),
        total * (0.5 if large else 0.25),
        "construct",
        hint,
        # Deterministic: the solution limit ends construction, not the clock.
        complete_after=None
        if search.settings.deterministic
        else total * (search.settings.construct_share or CONSTRUCT_SHARE),
    )
    if best is None:
        return None
    if pooled and not best.dropped:
        # A slow start (many visits) still leaves the pool a share of the time.
        now = search.clock.elapsed()
        deadline = max(total * POOL_ELIMINATE_UNTIL, min(now + total * POOL_LATE_SHARE, total * 0.8))
        best = _eliminate_with_pool(search, best, deadline=deadline)
    else:
        best = _eliminate_routes(search, best, deadline=total * ELIMINATE_UNTIL)
    used = [v for v, route in enumerate(best.routes) if route]
    # Guided search stalls in the optimum it was tuned to; restarting with a heavier penalty weight escapes
    # it (c1_2_1: 3.3% above the best known without, 0.0% with).
    strings = not best.dropped and lns.applicable(search.problem)
    if search.remaining() > 0.1 and not search.cancel.is_set():
        polished = search.run(
            used,
            # Deterministic: the solution limit ends the search, the clock is only a safety cap.
            min(search.remaining(), total * GUIDED_SHARE)
            if strings and not search.settings.deterministic
            else search.remaining(),
            "polish",
            best.routes,
            fixed_costs=False,
            guided_lambda=0.3,
            visits_fixed=not best.dropped,
        )
        if polished is not None and _better(search.problem, polished, best):
            best = polished
    if strings and search.remaining() > 0.1 and not search.cancel.is_set():
        best = _polish_with_strings(search, best, used)
    return best


def _polish_with_strings(search: _Search, best: Solution, used: Sequence[int]) -> Solution:
    """Guided search stalls after a few seconds on hundreds of visits: string removals go on from its best
    plan, then guided search, on the strict model, polishes and checks what they found; in a few rounds."""
    total = search.settings.time_limit_s
    deterministic = search.settings.deterministic
    strings = lns.StringSearch(search.problem, best.routes, used, seed=search.settings.seed)
    budget = search.settings.solution_limit * STRING_STEPS_PER_SOLUTION
    started, steps = search.clock.elapsed(), [0]
    span = max(1e-3, total - started)
    # Per round: string removals for its share of the remaining time but CHECK_SHARE, then guided search.
    for round_ in range(1, STRING_ROUNDS + 1):
        until = started + span * (round_ / STRING_ROUNDS - CHECK_SHARE)
        last_step = budget * round_ // STRING_ROUNDS

        def stop(until: float = until, last_step: int = last_step) -> bool:
            steps[0] += 1
            if search.cancel.is_set() or search.clock.elapsed() >= (total if deterministic else until):
                return True
            return deterministic and steps[0] > last_step

        def progress() -> float:
            if deterministic:
                return steps[0] / budget
            return (search.clock.elapsed() - started) / span

        strings.reset(best.routes)
        routes = strings.run(stop, progress)
        if search.on_progress is not None:
            search.on_progress(Progress(strings.best_total, search.clock.elapsed(), len(used), "polish"))
        seconds = started + span * round_ / STRING_ROUNDS - search.clock.elapsed()
        if deterministic:
            seconds = search.remaining()
        checked = search.run(
            used, max(0.5, seconds), "polish", routes, fixed_costs=False, guided_lambda=0.3, visits_fixed=True
        )
        if checked is not None and _better(search.problem, checked, best):
            best = checked
        if search.cancel.is_set() or search.remaining() <= 0.1:
            break
    return best


def _eliminate_with_pool(search: _Search, best: Solution, deadline: float) -> Solution:
    """Take out the route with fewest visits and place its visits with the ejection pool, again and again;
    the last plan that placed everything is read back into the strict model, which checks every rule."""
    problem = search.problem
    pool = ejection.EjectionPool(problem, best.routes, seed=search.settings.seed)
    steps = [0]
    budget = search.settings.solution_limit * POOL_STEPS_PER_SOLUTION
    total = search.settings.time_limit_s
    attempt = [search.clock.elapsed(), total * search.settings.attempt_share]

    def stop() -> bool:
        steps[0] += 1
        now = search.clock.elapsed()
        if search.settings.deterministic:
            # A step budget decides; the clock is only a safety cap.
            return steps[0] > budget or search.cancel.is_set() or now >= total
        return search.cancel.is_set() or now >= deadline or now - attempt[0] >= attempt[1]

    routes: list[list[int]] = [list(r) for r in best.routes]
    bound = _vehicle_lower_bound(problem)
    while sum(1 for r in routes if r) > bound:
        used = [v for v, route in enumerate(routes) if route]
        victim = min(used, key=lambda v: len(routes[v]))
        placed = ejection.eliminate(problem, routes, victim, stop, pool=pool)
        if placed is None:
            break
        routes = placed
        # A route that took long to remove announces a next one that takes longer: it gets more time.
        now = search.clock.elapsed()
        attempt[:] = [
            now,
            max(total * search.settings.attempt_share, POOL_ATTEMPT_GROWTH * (now - attempt[0])),
        ]
        if search.on_progress is not None:
            remaining = [v for v, route in enumerate(routes) if route]
            cost = sum(problem.vehicles[v].fixed_cost for v in remaining)
            cost += sum(_path_distance(problem, v, routes[v]) for v in remaining)
            search.on_progress(Progress(cost, now, len(remaining), "eliminate"))
    if sum(1 for r in routes if r) >= best.vehicles_used:
        return best
    keep = [v for v, route in enumerate(routes) if route]
    # The random moves left the routes long: a descent shortens them before guided search polishes them.
    shorter = ejection.EjectionPool(problem, routes)
    until = search.clock.elapsed() + total * POOL_DESCENT_SHARE
    limit = total if search.settings.deterministic else until
    shorter.descend(keep, lambda: search.cancel.is_set() or search.clock.elapsed() >= limit)
    routes = shorter.routes
    checked = search.run(keep, max(0.5, min(2.0, search.remaining())), "eliminate", routes, first_only=True)
    if checked is None or checked.dropped or checked.vehicles_used > len(keep):
        return best
    return checked


def _eliminate_routes(search: _Search, best: Solution, deadline: float) -> Solution:
    """Take out the route with fewest visits and spread them over the others, until that fails twice."""
    failures: set[int] = set()
    while search.clock.elapsed() < deadline - 0.2 and not search.cancel.is_set():
        used = [v for v, route in enumerate(best.routes) if route]
        candidates = sorted((v for v in used if v not in failures), key=lambda v: len(best.routes[v]))
        if len(used) <= _vehicle_lower_bound(search.problem) or not candidates:
            break
        victim = candidates[0]
        keep = [v for v in used if v != victim]
        attempt = _without_route(search, best, keep, deadline)
        if attempt is not None and len(attempt.dropped) <= len(best.dropped):
            best, failures = attempt, set()
        else:
            failures.add(victim)
            if len(failures) >= 2:
                break
    return best


def _without_route(search: _Search, best: Solution, keep: list[int], deadline: float) -> Solution | None:
    """Guided search on the remaining vehicles, stopped at the first plan that leaves out no more visits than
    before (and, where late visits are allowed at a cost, is on time); the strict model then checks it."""
    hint: Sequence[Sequence[int]] = best.routes
    for lateness_cost, guided_lambda in ATTEMPTS:
        seconds = min(
            deadline - search.clock.elapsed(), max(1.0, search.settings.time_limit_s * ELIMINATION_SHARE)
        )
        if seconds < 0.2 or search.cancel.is_set():
            return None
        # A relaxed try goes on from the least late routes of the one before; a strict one starts afresh.
        start = hint if lateness_cost else best.routes
        routes, hint = search.squeeze(keep, seconds, start, len(best.dropped), lateness_cost, guided_lambda)
        if routes is not None:
            checked = search.run(
                keep,
                max(0.1, min(1.0, search.remaining())),
                "eliminate",
                routes,
                fixed_costs=False,
                first_only=True,
            )
            if checked is not None and len(checked.dropped) <= len(best.dropped):
                return checked
    return None


def _vehicle_lower_bound(problem: RoutingProblem) -> int:
    bound = 1
    for dim in range(problem.dimensions):
        demand = sum(abs(n.demand[dim]) for n in problem.nodes if n.demand)
        capacity = max(v.capacity[dim] for v in problem.vehicles)
        bound = max(bound, math.ceil(demand / capacity) if capacity else 1)
    return bound


def _better(problem: RoutingProblem, a: Solution, b: Solution) -> bool:
    return _rank(problem, a) < _rank(problem, b)


def _rank(problem: RoutingProblem, solution: Solution) -> tuple[int, int, int]:
    return (len(solution.dropped), solution.vehicles_used, route_distance(problem, solution))


def route_distance(problem: RoutingProblem, solution: Solution) -> int:
    return sum(_path_distance(problem, v, route) for v, route in enumerate(solution.routes) if route)


def _path_distance(problem: RoutingProblem, v: int, route: Sequence[int]) -> int:
    vehicle = problem.vehicles[v]
    path = [vehicle.start, *route, vehicle.end]
    matrix = problem.distance[vehicle.profile]
    return sum(matrix[a][b] for a, b in itertools.pairwise(path))


def _variant(settings: SolverSettings, i: int, pooled: bool = False) -> SolverSettings:
    """The first search keeps the settings; the second starts differently; a third differently again.

    For the classic objective the second search is one uninterrupted guided search with fixed vehicle costs
    (often better on distance), or, where the ejection pool applies (`pooled`), the classic search with a
    longer guided construction before the pool, so that the pool starts from shorter routes; its removals get
    less time: the first search tries harder to remove routes, this one keeps time for distance."""
    settings = replace(settings, parallel_searches=1)
    if i % 3 == 1:
        if settings.minimise_vehicles and pooled:
            return replace(
                settings,
                seed=settings.seed + i,
                construct_share=VARIANT_CONSTRUCT_SHARE,
                attempt_share=VARIANT_ATTEMPT_SHARE,
            )
        if settings.minimise_vehicles:
            return replace(settings, minimise_vehicles=False)
        return replace(settings, first_solution=FirstSolution.LOCAL_CHEAPEST_INSERTION)
    if i % 3 == 2:
        return replace(
            settings, first_solution=FirstSolution.LOCAL_CHEAPEST_INSERTION, guided_local_search_lambda=0.2
        )
    return settings


def _solve_in_processes(problem: RoutingProblem, settings: SolverSettings) -> Solution:
    """Differently configured searches side by side, one per core; the best plan wins."""
    pooled = ejection.applicable(problem)
    variants = [_variant(settings, i, pooled) for i in range(settings.parallel_searches)]
    # Forking is fast but unsafe once other threads exist (a running service): then spawn.
    context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")
    with ProcessPoolExecutor(max_workers=len(variants), mp_context=context) as pool:
        started = time.time()
        futures = [pool.submit(_solve_until, problem, variant, started) for variant in variants]
        solutions = [f.result() for f in futures if f.exception() is None]
    if not solutions:
        raise NoSolution("no plan found within the time limit")
    best = min(solutions, key=lambda s: _rank(problem, s))
    first = min(s.seconds_to_first_solution for s in solutions if s.seconds_to_first_solution is not None)
    return replace(best, seconds_to_first_solution=first)


def _solve_until(problem: RoutingProblem, settings: SolverSettings, started: float) -> Solution:
    """In a worker process: starting took time, which counts against the time limit and the first solution."""
    late = time.time() - started
    solution = solve(problem, replace(settings, time_limit_s=max(0.5, settings.time_limit_s - late)))
    first = solution.seconds_to_first_solution
    return replace(solution, seconds_to_first_solution=None if first is None else first + late)
