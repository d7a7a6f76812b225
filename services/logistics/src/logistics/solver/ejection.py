"""Route elimination with an ejection pool, after Nagata and Bräysy (2009), on plain time-window problems.

One route is taken out and its visits go to a pool. A visit from the pool is inserted where it fits on time
and within capacity; where it fits nowhere, it goes in at the place that ejects the fewest, least often
troublesome visits of one route (at most `MAX_EJECTED`), which join the pool. Each visit counts how often it
found no place: visits that keep failing become costly to eject, so the search turns to the others. Random
moves that keep every route feasible (relocate, swap, exchange of route tails) shake the routes between
insertions. Routes stay feasible throughout: the pool holds what is left to place, never a late visit.

Applies to problems whose visits have one time window, no per-vehicle access windows, no pickup-and-delivery
pairs and demands of one sign (`applicable`); the other problems keep the OR-Tools route elimination.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logistics.solver.search import RoutingProblem

MAX_EJECTED = 3
# Random moves tried between two insertions from the pool.
SHAKE_MOVES = 300
NEAREST = 12


def applicable(problem: RoutingProblem) -> bool:
    if problem.pairs:
        return False
    depots = problem.depots
    demands = [d for n in problem.nodes for d in n.demand]
    if any(d < 0 for d in demands) and any(d > 0 for d in demands):
        return False
    return all(
        len(node.windows) <= 1 and not node.vehicle_windows
        for n, node in enumerate(problem.nodes)
        if n not in depots
    )


def node_data(
    problem: RoutingProblem,
) -> tuple[list[int], list[int], list[int], list[tuple[int, ...]], list[frozenset[int] | None]]:
    """Per node of a plain time-window problem: opening and closing of its one window, service time, demand
    per dimension (as an amount) and the vehicles allowed to visit it (None: any)."""
    nodes = problem.nodes
    dims = problem.dimensions
    return (
        [n.windows[0][0] if n.windows else 0 for n in nodes],
        [n.windows[0][1] if n.windows else problem.horizon for n in nodes],
        [n.service for n in nodes],
        [tuple(abs(n.demand[d]) if n.demand else 0 for d in range(dims)) for n in nodes],
        [n.allowed_vehicles for n in nodes],
    )


class EjectionPool:
    """Routes over the problem's vehicles, kept feasible, with earliest and latest service starts per stop."""

    def __init__(self, problem: RoutingProblem, routes: Sequence[Sequence[int]], seed: int = 0) -> None:
        self.problem = problem
        self.rng = random.Random(seed)
        nodes = problem.nodes
        self.ready, self.due, self.service, self.demand, self.allowed = node_data(problem)
        self.routes = [list(r) for r in routes]
        self.failures = [1] * len(nodes)
        self.earliest: list[list[int]] = [[] for _ in self.routes]
        self.latest: list[list[int]] = [[] for _ in self.routes]
        self.load: list[list[int]] = [[] for _ in self.routes]
        for k in range(len(self.routes)):
            self._refresh(k)
        # The nearest visits of each visit (first speed profile), for the random moves.
        visits = [n for n in range(len(nodes)) if n not in problem.depots]
        distance = problem.distance[0]
        self.nearest = {
            n: sorted((m for m in visits if m != n), key=lambda m: distance[n][m])[:NEAREST] for n in visits
        }

    # -- route bookkeeping ---------------------------------------------------------------------------------

    def path(self, k: int) -> list[int]:
        vehicle = self.problem.vehicles[k]
        return [vehicle.start, *self.routes[k], vehicle.end]

    def _refresh(self, k: int) -> None:
        vehicle = self.problem.vehicles[k]
        duration = self.problem.duration[vehicle.profile]
        path = self.path(k)
        service, ready, due = self.service, self.ready, self.due
        earliest = [vehicle.shift[0]]
        t = vehicle.shift[0]
        for prev, n in itertools.pairwise(path):
            t = max(t + service[prev] + duration[prev][n], ready[n])
            earliest.append(t)
        latest = [0] * len(path)
        latest[-1] = vehicle.shift[1]
        for i in range(len(path) - 2, -1, -1):
            n = path[i]
            bound = vehicle.shift[1] if i == 0 else due[n]
            latest[i] = min(bound, latest[i + 1] - service[n] - duration[n][path[i + 1]])
        self.earliest[k], self.latest[k] = earliest, latest
        self.load[k] = [
            sum(self.demand[n][d] for n in self.routes[k]) for d in range(self.problem.dimensions)
        ]

    def feasible(self, k: int, route: Sequence[int]) -> bool:
        """Whether vehicle k may serve `route` in this order: allowed, within capacity, windows and shift."""
        vehicle = self.problem.vehicles[k]
        for d, cap in enumerate(vehicle.capacity):
            if sum(self.demand[n][d] for n in route) > cap:
                return False
        allowed = self.allowed
        if any(allowed[n] is not None and k not in allowed[n] for n in route):  # type: ignore[operator]
            return False
        duration = self.problem.duration[vehicle.profile]
        service, ready, due = self.service, self.ready, self.due
        t, prev = vehicle.shift[0], vehicle.start
        for n in route:
            t = max(t + service[prev] + duration[prev][n], ready[n])
            if t > due[n]:
                return False
            prev = n
        return t + service[prev] + duration[prev][vehicle.end] <= vehicle.shift[1]

    def _may_take(self, k: int, u: int, freed: Sequence[int] = ()) -> bool:
        allowed = self.allowed[u]
        if allowed is not None and k not in allowed:
            return False
        capacity = self.problem.vehicles[k].capacity
        demand = self.demand
        return all(
            self.load[k][d] - sum(demand[n][d] for n in freed) + demand[u][d] <= capacity[d]
            for d in range(len(capacity))
        )

    # -- insertion -----------------------------------------------------------------------------------------

    def best_insertion(self, u: int, vehicles: Sequence[int]) -> tuple[int, int, int] | None:
        """(added distance, vehicle, position) of the cheapest feasible insertion of u, if any."""
        best: tuple[int, int, int] | None = None
        ready_u, due_u, service_u = self.ready[u], self.due[u], self.service[u]
        service = self.service
        for k in vehicles:
            if not self._may_take(k, u):
                continue
            vehicle = self.problem.vehicles[k]
            duration, distance = (
                self.problem.duration[vehicle.profile],
                self.problem.distance[vehicle.profile],
            )
            path, earliest, latest = self.path(k), self.earliest[k], self.latest[k]
            for i in range(1, len(path)):
                p, q = path[i - 1], path[i]
                t = max(earliest[i - 1] + service[p] + duration[p][u], ready_u)
                if t > due_u or t + service_u + duration[u][q] > latest[i]:
                    continue
                added = distance[p][u] + distance[u][q] - distance[p][q]
                if best is None or added < best[0]:
                    best = (added, k, i - 1)
        return best

    def best_ejection(self, u: int, vehicles: Sequence[int]) -> tuple[int, int, int, tuple[int, ...]] | None:
        """(sum of failure counts, vehicle, position, ejected positions) of the insertion of u that ejects the
        least troublesome visits (ties: the fewest), or None when no route takes u even so."""
        best: tuple[int, int, int, int, tuple[int, ...]] | None = None
        failures = self.failures
        service, ready, due = self.service, self.ready, self.due
        for k in vehicles:
            route = self.routes[k]
            if not route:
                continue
            allowed = self.allowed[u]
            if allowed is not None and k not in allowed:
                continue
            vehicle = self.problem.vehicles[k]
            duration = self.problem.duration[vehicle.profile]
            path, earliest, latest = self.path(k), self.earliest[k], self.latest[k]
            size = len(route)
            for count in range(1, min(MAX_EJECTED, size) + 1):
                for ejected in itertools.combinations(range(1, size + 1), count):
                    score = sum(failures[path[j]] for j in ejected)
                    if best is not None and (score, count) >= best[:2]:
                        continue
                    if not self._may_take(k, u, [path[j] for j in ejected]):
                        continue
                    skip = set(ejected)
                    for i in range(1, size + 2):
                        if i - 1 in skip:
                            continue
                        if self._fits(
                            path, earliest, latest, skip, ejected, i, u, duration, service, ready, due
                        ):
                            best = (score, count, k, i, ejected)
                            break
        if best is None:
            return None
        score, _, k, i, ejected = best
        return score, k, i, ejected

    @staticmethod
    def _fits(
        path: Sequence[int],
        earliest: Sequence[int],
        latest: Sequence[int],
        skip: set[int],
        ejected: tuple[int, ...],
        i: int,
        u: int,
        duration: Sequence[Sequence[int]],
        service: Sequence[int],
        ready: Sequence[int],
        due: Sequence[int],
    ) -> bool:
        """Whether the path without the `ejected` positions and with u before position i is on time: times are
        recomputed from the last unchanged stop up to the first unchanged one after the changes."""
        b = min(ejected[0], i) - 1
        e = max(ejected[-1] + 1, i)
        t, prev = earliest[b], path[b]
        for j in range(b + 1, e + 1):
            if j == i:
                t = max(t + service[prev] + duration[prev][u], ready[u])
                if t > due[u]:
                    return False
                prev = u
            n = path[j]
            if j == e:
                return t + service[prev] + duration[prev][n] <= latest[j]
            if j in skip:
                continue
            t = max(t + service[prev] + duration[prev][n], ready[n])
            if t > due[n]:
                return False
            prev = n
        return False  # unreachable: the loop ends at e

    def insert(self, k: int, position: int, u: int) -> None:
        self.routes[k].insert(position, u)
        self._refresh(k)

    def eject_and_insert(self, k: int, i: int, ejected: tuple[int, ...], u: int) -> list[int]:
        path = self.path(k)
        out = [path[j] for j in ejected]
        skip = set(ejected)
        route: list[int] = []
        for j in range(1, len(path) - 1):
            if j == i:
                route.append(u)
            if j not in skip:
                route.append(path[j])
        if i == len(path) - 1:
            route.append(u)
        self.routes[k] = route
        self._refresh(k)
        return out

    # -- moves between near visits -------------------------------------------------------------------------

    def _move(
        self, w: int, m: int, a: int, b: int, kind: int, cut: int
    ) -> tuple[list[int], list[int]] | None:
        """Routes a and b after a move of w (in a) next to m (in b): 0 relocates w before (cut 0) or after
        (cut 1) m, 1 swaps them, 2 exchanges the tails from w and m. None when it changes nothing or would
        empty a route."""
        ra, rb = self.routes[a], self.routes[b]
        i, j = ra.index(w), rb.index(m)
        if a == b:
            if kind != 0:
                return None
            route = [n for n in ra if n != w]
            at = route.index(m) + cut
            route.insert(at, w)
            return None if route == ra else (route, route)
        if kind == 0:
            new_a, new_b = [*ra[:i], *ra[i + 1 :]], [*rb[: j + cut], w, *rb[j + cut :]]
        elif kind == 1:
            new_a, new_b = [*ra[:i], m, *ra[i + 1 :]], [*rb[:j], w, *rb[j + 1 :]]
        else:
            new_a, new_b = [*ra[:i], *rb[j:]], [*rb[:j], *ra[i:]]
        if not new_a or not new_b:
            return None  # emptying a route is the pool's work
        return new_a, new_b

    def _length(self, k: int, route: Sequence[int]) -> int:
        vehicle = self.problem.vehicles[k]
        distance = self.problem.distance[vehicle.profile]
        path = [vehicle.start, *route, vehicle.end]
        return sum(distance[x][y] for x, y in itertools.pairwise(path))

    def shake(self, vehicles: Sequence[int], moves: int | None = None) -> None:
        """Random feasible moves between near visits: they change the routes without making any infeasible."""
        moves = SHAKE_MOVES if moves is None else moves
        where: dict[int, int] = {n: k for k in vehicles for n in self.routes[k]}
        visits = list(where)
        if not visits:
            return
        rng = self.rng
        touched: set[int] = set()
        for _ in range(moves):
            w = rng.choice(visits)
            m = rng.choice(self.nearest[w])
            if m not in where:
                continue
            a, b = where[w], where[m]
            moved = self._move(w, m, a, b, rng.randrange(3), rng.randrange(2))
            if moved is None or not self.feasible(a, moved[0]) or not self.feasible(b, moved[1]):
                continue
            self.routes[a], self.routes[b] = moved
            for n in moved[0]:
                where[n] = a
            for n in moved[1]:
                where[n] = b
            touched.update((a, b))
        for k in touched:
            self._refresh(k)

    def _improve(self, w: int, m: int, where: dict[int, int]) -> bool:
        a, b = where[w], where[m]
        before = self._length(a, self.routes[a]) + (self._length(b, self.routes[b]) if a != b else 0)
        for kind, cut in ((0, 0), (0, 1), (1, 0), (2, 0)):
            moved = self._move(w, m, a, b, kind, cut)
            if moved is None:
                continue
            after = self._length(a, moved[0]) + (self._length(b, moved[1]) if a != b else 0)
            if after < before and self.feasible(a, moved[0]) and self.feasible(b, moved[1]):
                self.routes[a], self.routes[b] = moved
                for n in moved[0]:
                    where[n] = a
                for n in moved[1]:
                    where[n] = b
                return True
        return False

    def descend(self, vehicles: Sequence[int], stop: Callable[[], bool]) -> None:
        """Feasible moves between near visits that shorten the routes, until none does (or `stop()`)."""
        where: dict[int, int] = {n: k for k in vehicles for n in self.routes[k]}
        improved = True
        while improved and not stop():
            improved = False
            for w in list(where):
                for m in self.nearest[w]:
                    if m in where and self._improve(w, m, where):
                        improved = True
                        break
        for k in vehicles:
            self._refresh(k)


def eliminate(
    problem: RoutingProblem,
    routes: Sequence[Sequence[int]],
    victim: int,
    stop: Callable[[], bool],
    seed: int = 0,
    pool: EjectionPool | None = None,
) -> list[list[int]] | None:
    """Routes without the vehicle `victim`, every visit of the given routes placed and every route feasible;
    None when `stop()` says so first."""
    search = pool or EjectionPool(problem, routes, seed)
    waiting = list(search.routes[victim])
    search.routes[victim] = []
    search._refresh(victim)
    vehicles = [k for k, r in enumerate(search.routes) if r]
    while waiting:
        if stop():
            return None
        u = waiting.pop()
        found = search.best_insertion(u, vehicles)
        if found is not None:
            search.insert(found[1], found[2], u)
            continue
        search.failures[u] += 1
        ejection = search.best_ejection(u, vehicles)
        if ejection is None:
            waiting.insert(0, u)
        else:
            _, k, i, ejected = ejection
            waiting.extend(search.eject_and_insert(k, i, ejected, u))
        search.shake(vehicles)
    return [list(r) for r in search.routes]
