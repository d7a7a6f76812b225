"""Shorter routes for a fixed fleet: slack induction by string removals (SISR), after Christiaens and Vanden
Berghe (2020), on plain time-window problems.

Each step removes a few strings of consecutive visits from routes near a random visit and puts the visits back
one by one at their cheapest place in the routes near them, now and then passing a place over ("blinks"), so
that the plan may change shape. A step that finds no place for a visit is undone: the fleet stays the same and
every route stays feasible throughout. Simulated annealing on the distance accepts a longer plan now and then,
less and less as the time runs out. Insertion checks are O(1) per place: every route keeps the earliest
service start of each stop (forward) and the latest one that keeps the rest of the route on time (backward).

Applies where the ejection pool does (`ejection.applicable`): one window per visit, no per-vehicle access
windows, no pickup-and-delivery pairs, demands of one sign.
"""

from __future__ import annotations

import bisect
import math
import operator
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from logistics.solver import ejection

if TYPE_CHECKING:
    from logistics.solver.search import RoutingProblem

# What an undo puts back of a route: visits, path, earliest and latest starts, load, room left, length.
_Kept = tuple[list[int], list[int], list[int], list[int], list[int], list[int], int]

# Average number of visits removed per step and longest string removed (the paper's c̄ and L^max).
AVERAGE_REMOVED = 10
MAX_STRING = 6
# Chance of passing over a place while inserting.
BLINK_RATE = 0.01
# Chance of a split string (a string removed but for a run of preserved visits inside it), and of each further
# preserved visit.
SPLIT_RATE = 0.5
SPLIT_DEPTH = 0.5
# Routes holding one of a visit's nearest visits are where it is inserted first.
NEAREST_ROUTES = 30
# Annealing temperatures, in multiples of the mean distance per visit of the start plan.
START_TEMPERATURE = 0.3
END_TEMPERATURE = 0.01
# Orders of insertion and their weights: random, largest demand first, farthest from the depot, nearest.
ORDERS = (("random", 4), ("demand", 4), ("far", 2), ("close", 1))


def applicable(problem: RoutingProblem) -> bool:
    """Plain time-window problems whose cost is distance: no cost on the time vehicles take."""
    return ejection.applicable(problem) and all(v.time_cost == 0 for v in problem.vehicles)


class StringSearch:
    """Routes over some of the problem's vehicles, kept feasible, with per-stop earliest and latest starts."""

    def __init__(
        self,
        problem: RoutingProblem,
        routes: Sequence[Sequence[int]],
        vehicles: Sequence[int],
        seed: int = 0,
    ) -> None:
        self.problem = problem
        self.rng = random.Random(seed)
        self.vehicles = list(vehicles)
        nodes = problem.nodes
        self.ready, self.due, self.service, self.demand, self.allowed = ejection.node_data(problem)
        self.demand_by_dimension = [[demand[d] for demand in self.demand] for d in range(problem.dimensions)]
        # Per vehicle: distance and travel-plus-service matrices of its speed profile.
        costs: dict[tuple[int, int], list[list[int]]] = {}
        for vehicle in problem.vehicles:
            key = (vehicle.profile, vehicle.distance_cost)
            if key not in costs:
                matrix = problem.distance[vehicle.profile]
                cost = vehicle.distance_cost
                costs[key] = matrix if cost == 1 else [[d * cost for d in row] for row in matrix]
        self.distance = [costs[v.profile, v.distance_cost] for v in problem.vehicles]
        transit: dict[int, list[list[int]]] = {}
        for vehicle in problem.vehicles:
            if vehicle.profile not in transit:
                matrix = problem.duration[vehicle.profile]
                transit[vehicle.profile] = [
                    [self.service[i] + d for d in row] for i, row in enumerate(matrix)
                ]
        self.transit = [transit[v.profile] for v in problem.vehicles]
        # The same matrices by column: what it takes to reach a node from each other one.
        matrices = [*transit.values(), *costs.values()]
        columns = {id(m): [list(c) for c in zip(*m, strict=True)] for m in matrices}
        self.transit_in = [columns[id(m)] for m in self.transit]
        self.distance_in = [columns[id(m)] for m in self.distance]
        self.routes = [list(r) for r in routes]
        self.earliest: list[list[int]] = [[] for _ in self.routes]
        self.latest: list[list[int]] = [[] for _ in self.routes]
        self.load: list[list[int]] = [[] for _ in self.routes]
        self.room: list[list[int]] = [[] for _ in self.routes]
        self.paths: list[list[int]] = [[] for _ in self.routes]
        self.length = [0] * len(self.routes)
        self.where = [-1] * len(nodes)
        self.saved: dict[int, _Kept] = {}
        for k in self.vehicles:
            self._refresh(k)
        visits = [n for n in range(len(nodes)) if n not in problem.depots]
        self.visits = visits
        distance = problem.distance[0]
        # Each visit's other visits by distance: where strings are removed, and the routes to insert into.
        self.adjacent = {n: sorted(visits, key=lambda m: distance[n][m]) for n in visits}
        self.near = {n: self.adjacent[n][1 : NEAREST_ROUTES + 1] for n in visits}
        self.best_total = self.total()

    # -- bookkeeping ---------------------------------------------------------------------------------------

    def _refresh(self, k: int) -> None:
        vehicle = self.problem.vehicles[k]
        route = self.routes[k]
        path = [vehicle.start, *route, vehicle.end]
        transit, distance = self.transit[k], self.distance[k]
        ready, due = self.ready, self.due
        t = vehicle.shift[0]
        earliest = [t]
        length = 0
        prev = path[0]
        for n in path[1:]:
            t += transit[prev][n]
            if t < ready[n]:
                t = ready[n]
            earliest.append(t)
            length += distance[prev][n]
            prev = n
        latest = [0] * len(path)
        t = latest[-1] = vehicle.shift[1]
        after = path[-1]
        for i in range(len(path) - 2, 0, -1):
            n = path[i]
            t -= transit[n][after]
            if t > due[n]:
                t = due[n]
            latest[i] = t
            after = n
        latest[0] = min(vehicle.shift[1], t - transit[path[0]][after])
        self.paths[k], self.earliest[k], self.latest[k], self.length[k] = path, earliest, latest, length
        load = [sum(map(column.__getitem__, route)) for column in self.demand_by_dimension]
        self.load[k] = load
        self.room[k] = [cap - used for cap, used in zip(vehicle.capacity, load, strict=True)]
        where = self.where
        for n in route:
            where[n] = k

    def reset(self, routes: Sequence[Sequence[int]]) -> None:
        """Go on from these routes (over the same vehicles)."""
        for k in self.vehicles:
            for n in self.routes[k]:
                self.where[n] = -1
            self.routes[k] = list(routes[k])
            self._refresh(k)

    def feasible(self, k: int) -> bool:
        """Whether route k, as its bookkeeping stands, is on time everywhere and within capacity."""
        earliest, latest = self.earliest[k], self.latest[k]
        capacity = self.problem.vehicles[k].capacity
        if any(load > cap for load, cap in zip(self.load[k], capacity, strict=True)):
            return False
        return all(e <= lt for e, lt in zip(earliest, latest, strict=True))

    def total(self) -> int:
        return sum(self.length[k] for k in self.vehicles)

    # -- ruin ----------------------------------------------------------------------------------------------

    def ruin(self) -> list[int] | None:
        """Remove strings from routes near a random visit; the removed visits, or None when a shortened route
        is late (travel times that break the triangle inequality)."""
        rng = self.rng
        # Every visit is in a route between steps.
        mean_size = len(self.visits) / max(1, sum(1 for k in self.vehicles if self.routes[k]))
        longest = min(MAX_STRING, mean_size)
        strings = int(rng.uniform(1, 4 * AVERAGE_REMOVED / (1 + longest) - 1 + 1))
        seed = rng.choice(self.visits)
        removed: list[int] = []
        ruined: set[int] = set()
        for c in self.adjacent[seed]:
            if len(ruined) >= strings:
                break
            k = self.where[c]
            if k < 0 or k in ruined:
                continue
            ruined.add(k)
            route = self.routes[k]
            size = int(rng.uniform(1, min(len(route), longest) + 1))
            removed.extend(self._cut(k, route.index(c), size))
            if not self.feasible(k):
                return None
        return removed

    def _cut(self, k: int, at: int, size: int) -> list[int]:
        """Remove a string of `size` visits around position `at` of route k (a split string keeps a run of
        visits inside it in the route); the removed visits."""
        rng = self.rng
        route = self.routes[k]
        keep = 0
        if size < len(route) and rng.random() < SPLIT_RATE:
            keep = 1
            while size + keep < len(route) and rng.random() < SPLIT_DEPTH:
                keep += 1
        span = size + keep
        first = rng.randint(max(0, at - span + 1), min(at, len(route) - span))
        string = route[first : first + span]
        offset = rng.randint(0, size) if keep else span
        kept = string[offset : offset + keep]
        taken = string[:offset] + string[offset + keep :]
        self._save(k)
        self.routes[k] = [*route[:first], *kept, *route[first + span :]]
        for n in taken:
            self.where[n] = -1
        self._refresh(k)
        return taken

    # -- recreate ------------------------------------------------------------------------------------------

    def _order(self, removed: list[int]) -> list[int]:
        rng = self.rng
        kind = rng.choices([o for o, _ in ORDERS], weights=[w for _, w in ORDERS])[0]
        rng.shuffle(removed)
        if kind == "demand":
            removed.sort(key=lambda n: sum(self.demand[n]), reverse=True)
        elif kind in ("far", "close"):
            depot = self.problem.vehicles[self.vehicles[0]].start
            distance = self.problem.distance[0]
            removed.sort(key=lambda n: distance[depot][n], reverse=kind == "far")
        return removed

    def _place(self, u: int, routes: Sequence[int]) -> tuple[int, int, int] | None:
        """(added distance, vehicle, position in the route) of u's cheapest feasible place, blinks aside."""
        best, best_added = None, 0
        ready_u, due_u = self.ready[u], self.due[u]
        after_u = ready_u + self.service[u]
        demands_u = self.demand[u]
        single = len(demands_u) == 1
        demand_u = demands_u[0] if single else 0
        allowed = self.allowed[u]
        random = self.rng.random
        for k in routes:
            if allowed is not None and k not in allowed:
                continue
            room = self.room[k]
            if demand_u > room[0] if single else any(map(operator.gt, demands_u, room)):
                continue
            path, earliest, latest = self.paths[k], self.earliest[k], self.latest[k]
            transit, distance = self.transit[k], self.distance[k]
            into_u, out_of_u = self.transit_in[k][u], transit[u]
            from_u, to_u = distance[u], self.distance_in[k][u]
            # Only between stops whose times allow u: service there ends after u opens and starts before u
            # closes (earliest and latest starts grow along a route).
            first = max(0, bisect.bisect_left(latest, after_u, 1) - 1)
            last = bisect.bisect_right(earliest, due_u, 0, len(path) - 1)
            for i in range(first, last):
                p, q = path[i], path[i + 1]
                t = earliest[i] + into_u[p]
                if t < ready_u:
                    t = ready_u
                if t <= due_u and t + out_of_u[q] <= latest[i + 1]:
                    added = to_u[p] + from_u[q] - distance[p][q]
                    if (best is None or added < best_added) and random() >= BLINK_RATE:
                        best, best_added = (added, k, i), added
        return best

    def recreate(self, removed: list[int]) -> bool:
        """Insert the removed visits, each at its cheapest place; False when one finds none."""
        for u in self._order(removed):
            routes = set(map(self.where.__getitem__, self.near[u]))
            routes.discard(-1)
            found = self._place(u, sorted(routes))
            if found is None:
                found = self._place(u, self.vehicles)
            if found is None:
                return False
            self._insert(u, *found)
        return True

    def _insert(self, u: int, added: int, k: int, i: int) -> None:
        """Put u at position i of route k; earliest starts change after it, latest ones before it, as far as
        the change carries."""
        self._save(k)
        route, path, earliest, latest = self.routes[k], self.paths[k], self.earliest[k], self.latest[k]
        self.routes[k] = [*route[:i], u, *route[i:]]
        transit = self.transit[k]
        ready, due = self.ready, self.due
        # Forward from u, at path position i + 1, up to the first stop whose earliest start stays the same.
        new_earliest = earliest[: i + 1]
        t, prev = earliest[i], path[i]
        j = i + 1
        for n in (u, *path[i + 1 :]):
            t += transit[prev][n]
            if t < ready[n]:
                t = ready[n]
            if n != u and t == earliest[j - 1]:
                new_earliest.extend(earliest[j - 1 :])
                break
            new_earliest.append(t)
            prev = n
            j += 1
        # Backward from u down to the first stop whose latest start stays the same.
        tail = latest[i + 1 :]
        head = latest[: i + 1]
        t = latest_u = min(due[u], tail[0] - transit[u][path[i + 1]])
        end = self.problem.vehicles[k].shift[1]
        after = u
        for j in range(i, -1, -1):
            n = path[j]
            t -= transit[n][after]
            bound = end if j == 0 else due[n]
            if t > bound:
                t = bound
            if t == head[j]:
                break
            head[j] = t
            after = n
        self.paths[k] = [*path[: i + 1], u, *path[i + 1 :]]
        self.earliest[k], self.latest[k] = new_earliest, [*head, latest_u, *tail]
        self.length[k] += added
        demand = self.demand[u]
        self.load[k] = [load + d for load, d in zip(self.load[k], demand, strict=True)]
        self.room[k] = [room - d for room, d in zip(self.room[k], demand, strict=True)]
        self.where[u] = k

    def _save(self, k: int) -> None:
        """Keep route k as it was before this step, for an undo."""
        if k not in self.saved:
            self.saved[k] = (
                self.routes[k],
                self.paths[k],
                self.earliest[k],
                self.latest[k],
                self.load[k],
                self.room[k],
                self.length[k],
            )

    def undo(self) -> None:
        """Take back the last step."""
        for k, (route, path, earliest, latest, load, room, length) in self.saved.items():
            for n in self.routes[k]:
                self.where[n] = -1
            self.routes[k], self.paths[k], self.earliest[k], self.latest[k] = route, path, earliest, latest
            self.load[k], self.room[k], self.length[k] = load, room, length
        for k in self.saved:
            for n in self.routes[k]:
                self.where[n] = k

    # -- search --------------------------------------------------------------------------------------------

    def step(self) -> int | None:
        """One ruin and recreate: the change in distance (`undo()` takes it back), or None, the routes as
        before, when a removed visit found no place."""
        self.saved = {}
        removed = self.ruin()
        if removed is None or not self.recreate(removed):
            self.undo()
            return None
        return sum(self.length[k] - kept[-1] for k, kept in self.saved.items())

    def run(self, stop: Callable[[], bool], progress: Callable[[], float]) -> list[list[int]]:
        """Ruin and recreate until `stop()`; `progress()`, how far along the search is (0 to 1), sets the
        temperature. The best routes found: the start unless something shorter turned up."""
        current = self.total()
        self.best_total = current
        best_total, best = current, [list(r) for r in self.routes]
        per_visit = current / max(1, len(self.visits))
        hot, cold = START_TEMPERATURE * per_visit, END_TEMPERATURE * per_visit
        rng = self.rng
        while self.visits and not stop():
            delta = self.step()
            if delta is None:
                continue
            temperature = hot * (cold / hot) ** min(1.0, max(0.0, progress()))
            if delta < -temperature * math.log(1.0 - rng.random()):
                current += delta
                if current < best_total:
                    best_total, best = current, [list(r) for r in self.routes]
                    self.best_total = best_total
            else:
                self.undo()
        return best
