"""Route elimination with the ejection pool: fewer routes or none removed, never a plan that breaks a rule."""

from __future__ import annotations

import time
from pathlib import Path

from logistics.instances import load_instance, routing_problem
from logistics.solver import FleetVehicle, Node, RoutingProblem, SolverSettings, solve
from logistics.solver.ejection import EjectionPool, applicable, eliminate
from logistics.solver.search import _eliminate_with_pool, _Search
from logistics.validator import validate_vrptw


def used(routes: list[list[int]] | tuple[tuple[int, ...], ...]) -> list[list[int]]:
    return [list(r) for r in routes if r]


def test_each_removal_keeps_every_visit_and_every_rule(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/RC101.txt")
    problem = routing_problem(instance)
    assert applicable(problem)
    search = _Search(problem, SolverSettings(time_limit_s=5.0, minimise_vehicles=True), None, None)
    start = search.run(range(len(problem.vehicles)), 1.0, "construct", complete_after=0.05)
    assert start is not None and not start.dropped
    pool = EjectionPool(problem, start.routes, seed=3)
    current = [list(r) for r in pool.routes]
    assert validate_vrptw(instance, used(current)) == []
    deadline = time.monotonic() + 3.0
    for _ in range(5):
        victim = min((k for k, r in enumerate(current) if r), key=lambda k: len(current[k]))
        placed = eliminate(problem, current, victim, lambda: time.monotonic() > deadline, pool=pool)
        if placed is None:
            break
        assert not placed[victim]
        assert sorted(n for r in placed for n in r) == list(range(1, len(problem.nodes)))
        assert validate_vrptw(instance, used(placed)) == []
        assert len(used(placed)) == len(used(current)) - 1
        current = placed


def test_a_stopped_removal_returns_nothing() -> None:
    depot = Node(demand=(0,))
    nodes = (depot, *(Node(windows=((0, 100),), demand=(6,), penalty=10) for _ in range(3)))
    vehicle = FleetVehicle(0, 0, (0, 1000), (10,))
    matrix = [[0 if i == j else 10 for j in range(4)] for i in range(4)]
    problem = RoutingProblem(nodes, (vehicle,) * 3, (matrix,), (matrix,), 1000)
    # Each vehicle carries one visit only: no route can go, and the pool gives up when told to.
    assert eliminate(problem, [[1], [2], [3]], 0, lambda: True) is None


def test_route_elimination_with_the_pool_returns_a_checked_plan(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "homberger/r1_2_1.txt")
    problem = routing_problem(instance)
    search = _Search(problem, SolverSettings(time_limit_s=10.0, minimise_vehicles=True), None, None)
    start = search.run(range(len(problem.vehicles)), 2.0, "construct", complete_after=0.1)
    assert start is not None and not start.dropped
    after = _eliminate_with_pool(search, start, deadline=5.0)
    assert not after.dropped
    assert after.vehicles_used < start.vehicles_used
    assert validate_vrptw(instance, used(after.routes)) == []
    # Read back from the strict model: service starts are known for every stop.
    assert [len(s) for s in after.service_starts] == [len(r) for r in after.routes]


def test_deterministic_fewest_vehicles_search_repeats_itself(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/R101.txt")
    problem = routing_problem(instance)
    settings = SolverSettings(
        time_limit_s=20.0, minimise_vehicles=True, deterministic=True, solution_limit=100
    )
    first, second = solve(problem, settings), solve(problem, settings)
    assert first.routes == second.routes
    assert validate_vrptw(instance, used(first.routes)) == []


def test_problems_with_pairs_or_several_windows_keep_the_other_elimination() -> None:
    depot = Node(demand=(0,))
    vehicle = FleetVehicle(0, 0, (0, 1000), (10,))
    matrix = [[0 if i == j else 10 for j in range(3)] for i in range(3)]
    two_windows = Node(windows=((0, 10), (50, 60)), demand=(1,), penalty=10)
    plain = Node(windows=((0, 100),), demand=(1,), penalty=10)
    assert applicable(RoutingProblem((depot, plain, plain), (vehicle,), (matrix,), (matrix,), 1000))
    assert not applicable(RoutingProblem((depot, plain, two_windows), (vehicle,), (matrix,), (matrix,), 1000))
    assert not applicable(
        RoutingProblem((depot, plain, plain), (vehicle,), (matrix,), (matrix,), 1000, pairs=((1, 2),))
    )
