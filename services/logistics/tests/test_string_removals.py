"""String removals for a fixed fleet: every visit kept, every route on time, never a longer plan."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from logistics.instances import Customer, VrptwInstance, load_instance, routing_problem
from logistics.solver import FleetVehicle, Node, RoutingProblem, SolverSettings
from logistics.solver.lns import StringSearch, applicable
from logistics.solver.search import _polish_with_strings, _Search, route_distance
from logistics.validator import validate_vrptw


def used(routes: list[list[int]] | tuple[tuple[int, ...], ...]) -> list[list[int]]:
    return [list(r) for r in routes if r]


def steps(count: int) -> tuple[Callable[[], bool], Callable[[], float]]:
    """A stop after `count` steps and the matching progress: the search then depends on no clock."""
    done = [0]

    def stop() -> bool:
        done[0] += 1
        return done[0] > count

    return stop, lambda: done[0] / count


def start_plan(instance: VrptwInstance) -> tuple[RoutingProblem, tuple[tuple[int, ...], ...], list[int]]:
    problem = routing_problem(instance)
    search = _Search(problem, SolverSettings(time_limit_s=5.0), None, None)
    start = search.run(range(len(problem.vehicles)), 1.0, "construct", complete_after=0.05)
    assert start is not None and not start.dropped
    return problem, start.routes, [k for k, r in enumerate(start.routes) if r]


def test_string_removals_keep_every_visit_and_shorten_the_plan(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/R101.txt")
    problem, routes, vehicles = start_plan(instance)
    search = StringSearch(problem, routes, vehicles, seed=1)
    before = search.total()
    stop, progress = steps(3000)
    found = search.run(stop, progress)
    assert validate_vrptw(instance, used(found)) == []
    assert all(not found[k] for k in range(len(found)) if k not in vehicles)
    after = StringSearch(problem, found, vehicles).total()
    assert after == search.best_total
    assert after < before


def test_string_removals_repeat_themselves_for_a_seed(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/RC101.txt")
    problem, routes, vehicles = start_plan(instance)
    runs = []
    for _ in range(2):
        stop, progress = steps(500)
        runs.append(StringSearch(problem, routes, vehicles, seed=4).run(stop, progress))
    assert runs[0] == runs[1]


def test_the_polish_returns_a_checked_plan_no_longer_than_the_given_one(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/C101.txt")
    problem, routes, vehicles = start_plan(instance)
    search = _Search(
        problem, SolverSettings(time_limit_s=4.0, deterministic=True, solution_limit=50), None, None
    )
    given_plan = search.run(vehicles, 1.0, "polish", routes, fixed_costs=False, first_only=True)
    assert given_plan is not None
    polished = _polish_with_strings(search, given_plan, vehicles)
    assert not polished.dropped
    assert polished.vehicles_used <= given_plan.vehicles_used
    assert route_distance(problem, polished) <= route_distance(problem, given_plan)
    assert validate_vrptw(instance, used(polished.routes)) == []
    # Read back from the strict model: service starts are known for every stop.
    assert [len(s) for s in polished.service_starts] == [len(r) for r in polished.routes]


def test_without_visits_there_is_nothing_to_do() -> None:
    depot = Node(demand=(0,))
    vehicle = FleetVehicle(0, 0, (0, 1000), (10,))
    problem = RoutingProblem((depot,), (vehicle,), ([[0]],), ([[0]],), 1000)
    stop, progress = steps(10)
    assert StringSearch(problem, [[]], [0]).run(stop, progress) == [[]]


def test_only_plain_time_window_problems_with_a_distance_cost_qualify() -> None:
    depot = Node(demand=(0,))
    vehicle = FleetVehicle(0, 0, (0, 1000), (10,))
    matrix = [[0 if i == j else 10 for j in range(3)] for i in range(3)]
    plain = Node(windows=((0, 100),), demand=(1,), penalty=10)
    two_windows = Node(windows=((0, 10), (50, 60)), demand=(1,), penalty=10)
    assert applicable(RoutingProblem((depot, plain, plain), (vehicle,), (matrix,), (matrix,), 1000))
    assert not applicable(RoutingProblem((depot, plain, two_windows), (vehicle,), (matrix,), (matrix,), 1000))
    assert not applicable(
        RoutingProblem((depot, plain, plain), (vehicle,), (matrix,), (matrix,), 1000, pairs=((1, 2),))
    )
    timed = FleetVehicle(0, 0, (0, 1000), (10,), time_cost=1)
    assert not applicable(RoutingProblem((depot, plain, plain), (timed,), (matrix,), (matrix,), 1000))


@st.composite
def instances(draw: st.DrawFn) -> VrptwInstance:
    count = draw(st.integers(3, 14))
    depot = Customer(0, 25.0, 25.0, 0, 0.0, 1000.0, 0.0)
    customers = [depot]
    for number in range(1, count + 1):
        x, y = draw(st.integers(0, 50)), draw(st.integers(0, 50))
        ready = draw(st.integers(0, 300))
        width = draw(st.integers(0, 300))
        # Reachable straight from the depot: a route of its own is always on time.
        reach = math.ceil(math.hypot(x - 25, y - 25)) + 1
        service = draw(st.integers(0, 20))
        customers.append(
            Customer(number, x, y, draw(st.integers(1, 10)), ready, max(ready + width, reach), service)
        )
    return VrptwInstance("generated", count, 20, tuple(customers))


@settings(max_examples=60, deadline=None)
@given(instances(), st.lists(st.booleans(), min_size=1, max_size=30), st.integers(0, 1000))
def test_each_step_keeps_the_routes_feasible_and_undo_restores_them(
    instance: VrptwInstance, keep: list[bool], seed: int
) -> None:
    problem = routing_problem(instance)
    count = len(instance.customers) - 1
    # Fewer vehicles than visits where the plan allows it: a few visits share a route.
    routes = [[n] for n in range(1, count + 1)]
    vehicles = list(range(count))
    search = StringSearch(problem, routes, vehicles, seed=seed)
    for accept in keep:
        before = [list(r) for r in search.routes]
        delta = search.step()
        if delta is None:
            assert search.routes == before
            continue
        if not accept:
            search.undo()
            assert search.routes == before
        current = [list(r) for r in search.routes]
        assert validate_vrptw(instance, used(current)) == []
        fresh = StringSearch(problem, current, vehicles)
        assert (fresh.earliest, fresh.latest, fresh.load, fresh.where) == (
            search.earliest,
            search.latest,
            search.load,
            search.where,
        )
        assert all(search.feasible(k) for k in vehicles)
