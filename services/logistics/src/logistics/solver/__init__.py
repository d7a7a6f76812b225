"""Vehicle routing for the logistics service: the OR-Tools search and the planning of a day's orders."""

from logistics.solver.planning import (
    Layout,
    PlanningSettings,
    compile_problem,
    layout,
    plan,
    plan_in_thread,
)
from logistics.solver.search import (
    FirstSolution,
    FleetVehicle,
    Node,
    NoSolution,
    Progress,
    RoutingProblem,
    Solution,
    SolverSettings,
    route_distance,
    solve,
)

__all__ = [
    "FirstSolution",
    "FleetVehicle",
    "Layout",
    "NoSolution",
    "Node",
    "PlanningSettings",
    "Progress",
    "RoutingProblem",
    "Solution",
    "SolverSettings",
    "compile_problem",
    "layout",
    "plan",
    "plan_in_thread",
    "route_distance",
    "solve",
]
