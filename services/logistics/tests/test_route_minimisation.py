"""Route minimisation: fewer vehicles or the same, never an infeasible plan, late visits never returned."""

from __future__ import annotations

from pathlib import Path

from logistics.instances import load_instance, routing_problem
from logistics.solver import FleetVehicle, Node, RoutingProblem, Solution, SolverSettings
from logistics.solver.search import _eliminate_routes, _insert_late, _Search
from logistics.validator import validate_vrptw


def started(problem: RoutingProblem, seconds: float, construct: float) -> tuple[_Search, Solution]:
    """A search with `seconds` in all and its first plan, built in `construct` seconds, visiting everyone."""
    search = _Search(problem, SolverSettings(time_limit_s=seconds, minimise_vehicles=True), None, None)
    start = search.run(range(len(problem.vehicles)), construct, "construct")
    assert start is not None and not start.dropped
    return search, start


def routes_of(solution_routes: tuple[tuple[int, ...], ...]) -> list[list[int]]:
    return [list(r) for r in solution_routes if r]


def test_eliminating_routes_never_adds_a_vehicle_nor_breaks_a_rule(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/R101.txt")
    problem = routing_problem(instance)
    search, start = started(problem, 8.0, 0.5)
    after = _eliminate_routes(search, start, deadline=6.0)
    assert not after.dropped
    assert after.vehicles_used <= start.vehicles_used
    assert validate_vrptw(instance, routes_of(after.routes)) == []


def test_a_split_route_is_merged_back_on_time(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/C101.txt")
    problem = routing_problem(instance)
    search, start = started(problem, 10.0, 1.0)
    used = [v for v, r in enumerate(start.routes) if r]
    spare = next(v for v, r in enumerate(start.routes) if not r)
    longest = max(used, key=lambda v: len(start.routes[v]))
    routes = [list(r) for r in start.routes]
    half = len(routes[longest]) // 2
    routes[spare], routes[longest] = routes[longest][half:], routes[longest][:half]
    # Without the spare vehicle the moved visits start out of every route and must find a place again.
    merged, _ = search.squeeze(used, 5.0, routes, 0, lateness_cost=100, guided_lambda=0.1)
    assert merged is not None
    assert sum(1 for r in merged if r) <= len(used) and not merged[spare]
    assert validate_vrptw(instance, routes_of(merged)) == []


def test_routes_that_cannot_be_on_time_are_never_returned_only_offered_to_go_on_from(vrp_data: Path) -> None:
    instance = load_instance(vrp_data / "solomon/R101.txt")
    problem = routing_problem(instance)
    search, start = started(problem, 6.0, 0.5)
    # Ten vehicles carry R101's load, but its windows need far more: every plan of ten is late somewhere.
    ten = [v for v, r in enumerate(start.routes) if r][:10]
    found, closest = search.squeeze(ten, 1.5, start.routes, 0, lateness_cost=1000, guided_lambda=0.1)
    assert found is None
    assert sum(1 for r in closest if r) <= 10
    assert sorted(n for r in closest for n in r) == list(range(1, len(instance.customers)))
    assert validate_vrptw(instance, routes_of(tuple(tuple(r) for r in closest))) != []


def test_late_insertion_respects_capacity_and_allowed_vehicles() -> None:
    depot = Node(demand=(0,))
    nodes = (
        depot,
        Node(windows=((0, 100),), demand=(5,), penalty=10),
        Node(windows=((0, 100),), demand=(5,), allowed_vehicles=frozenset({1}), penalty=10),
        Node(windows=((0, 100),), demand=(50,), penalty=10),
        Node(windows=((0, 100),), demand=(5,), penalty=10),
    )
    vehicle = FleetVehicle(0, 0, (0, 1000), (10,))
    matrix = [[0 if i == j else 10 for j in range(5)] for i in range(5)]
    problem = RoutingProblem(nodes, (vehicle, vehicle), (matrix,), (matrix,), 1000)
    routes = _insert_late(problem, [0, 1], [[1], []])
    assert routes[1][0] == 2  # only vehicle 1 may take node 2
    assert 3 not in {n for r in routes for n in r}  # heavier than any vehicle: left out
    assert sorted(n for r in routes for n in r) == [1, 2, 4]
    assert all(sum(nodes[n].demand[0] for n in r) <= 10 for r in routes)
