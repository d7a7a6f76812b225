"""Solomon and Gehring-Homberger VRPTW instance files: parsing and exact Euclidean distances."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from logistics.solver import FleetVehicle, Node, RoutingProblem


class InstanceFormatError(ValueError):
    """The text is not a Solomon-format instance."""


@dataclass(frozen=True)
class Customer:
    number: int
    x: float
    y: float
    demand: int
    ready: float
    due: float
    service: float


@dataclass(frozen=True)
class VrptwInstance:
    """Customer 0 is the depot; its due date is the horizon by which every vehicle is back."""

    name: str
    vehicles: int
    capacity: int
    customers: tuple[Customer, ...]

    @property
    def depot(self) -> Customer:
        return self.customers[0]

    def distance(self, i: int, j: int) -> float:
        a, b = self.customers[i], self.customers[j]
        return math.hypot(a.x - b.x, a.y - b.y)

    def route_length(self, route: list[int]) -> float:
        """Exact length of depot → customers → depot."""
        path = [0, *route, 0]
        return sum(self.distance(a, b) for a, b in itertools.pairwise(path))


def parse_instance(text: str) -> VrptwInstance:
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) < 6 or lines[1].upper() != "VEHICLE":
        raise InstanceFormatError("expected the instance name then a VEHICLE section")
    try:
        vehicles, capacity = (int(v) for v in lines[3].split()[:2])
        start = next(i for i, line in enumerate(lines) if line.upper().startswith("CUST NO")) + 1
        customers = tuple(_customer(line) for line in lines[start:])
    except (StopIteration, ValueError) as exc:
        raise InstanceFormatError(str(exc) or "malformed instance") from exc
    if not customers or customers[0].number != 0:
        raise InstanceFormatError("the first customer must be the depot, number 0")
    if [c.number for c in customers] != list(range(len(customers))):
        raise InstanceFormatError("customers must be numbered 0..n in order")
    return VrptwInstance(lines[0], vehicles, capacity, customers)


def _customer(line: str) -> Customer:
    fields = line.split()
    if len(fields) != 7:
        raise ValueError(f"expected 7 columns in {line!r}")
    number, x, y, demand, ready, due, service = fields
    return Customer(int(number), float(x), float(y), int(demand), float(ready), float(due), float(service))


def load_instance(path: Path) -> VrptwInstance:
    return parse_instance(path.read_text())


SCALE = 1000


def routing_problem(instance: VrptwInstance, scale: int = SCALE) -> RoutingProblem:
    """The classic VRPTW as an integer problem: times and distances scaled, travel times rounded up."""
    n = len(instance.customers)
    exact = [[instance.distance(i, j) * scale for j in range(n)] for i in range(n)]
    distance = [[round(d) for d in row] for row in exact]
    duration = [[math.ceil(d - 1e-9) for d in row] for row in exact]
    fixed_cost = 2 * max(max(row) for row in distance) * n + 1
    depot = instance.depot
    nodes = [Node()] + [
        Node(
            windows=((round(c.ready * scale), round(c.due * scale)),),
            service=round(c.service * scale),
            demand=(c.demand,),
            penalty=10 * fixed_cost,
        )
        for c in instance.customers[1:]
    ]
    horizon = round(depot.due * scale)
    vehicle = FleetVehicle(0, 0, (round(depot.ready * scale), horizon), (instance.capacity,), 0, fixed_cost)
    return RoutingProblem(
        nodes=(Node(demand=(0,)), *nodes[1:]),
        vehicles=(vehicle,) * instance.vehicles,
        distance=(distance,),
        duration=(duration,),
        horizon=horizon,
    )
