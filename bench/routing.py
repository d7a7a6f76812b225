"""Benchmark the routing solver on VRPTW instances, PyVRP as reference, and a Hasselt day; prints JSON."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from logistics.domain import (
    AccessRule,
    AccessZone,
    GeoPoint,
    Hub,
    HubPickup,
    MarketStall,
    Order,
    Plan,
    PlanningRequest,
    ReplanRequest,
    ShopAddress,
    StopOutcome,
    StopStatus,
    SupplierPickup,
    TimeWindow,
    Vehicle,
    VehicleKind,
    VehicleState,
    area_from_geojson,
)
from logistics.instances import SCALE, VrptwInstance, load_instance, routing_problem
from logistics.routing import haversine_matrix
from logistics.solver import PlanningSettings, SolverSettings, layout, plan, solve
from logistics.validator import validate_plan, validate_vrptw

REPO = Path(__file__).resolve().parents[1]


def data_folder() -> Path:
    override = os.environ.get("CITYBLOCKS_VRP_DATA")
    return Path(override) if override else REPO.parent / "shared" / "data" / "vrp"


def default_instances(folder: Path) -> list[Path]:
    return sorted((folder / "solomon").glob("*.txt")) + sorted((folder / "homberger").glob("*.txt"))


def best_known(folder: Path) -> dict[str, tuple[int, float]]:
    path = folder / "bks.csv"
    if not path.exists():
        return {}
    with path.open() as handle:
        return {
            row["instance"]: (int(row["vehicles"]), float(row["distance"])) for row in csv.DictReader(handle)
        }


def result(
    instance: VrptwInstance,
    solver: str,
    routes: list[list[int]],
    first: float | None,
    seconds: float,
    bks: dict[str, tuple[int, float]],
) -> dict[str, Any]:
    distance = sum(instance.route_length(r) for r in routes)
    row: dict[str, Any] = {
        "instance": instance.name,
        "solver": solver,
        "customers": len(instance.customers) - 1,
        "vehicles": len(routes),
        "distance": round(distance, 4),
        "feasible": validate_vrptw(instance, routes) == [],
        "seconds_to_first_solution": None if first is None else round(first, 3),
        "seconds": round(seconds, 2),
    }
    if instance.name in bks:
        vehicles, best = bks[instance.name]
        row |= {
            "bks_vehicles": vehicles,
            "bks_distance": best,
            "gap_pct": round(100 * (distance - best) / best, 2),
        }
    return row


def run_ortools(
    instance: VrptwInstance, seconds: float, searches: int
) -> tuple[list[list[int]], float | None]:
    settings = SolverSettings(time_limit_s=seconds, minimise_vehicles=True, parallel_searches=searches)
    solution = solve(routing_problem(instance), settings)
    return [list(r) for r in solution.routes if r], solution.seconds_to_first_solution


def run_pyvrp(instance: VrptwInstance, seconds: float) -> tuple[list[list[int]], float | None]:
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    model = Model()
    locations = [model.add_location(c.x, c.y) for c in instance.customers]
    depot = model.add_depot(
        locations[0], tw_early=_scaled(instance.depot.ready), tw_late=_scaled(instance.depot.due)
    )
    n = len(instance.customers)
    longest = max(instance.distance(i, j) for i in range(n) for j in range(n))
    model.add_vehicle_type(
        instance.vehicles,
        capacity=instance.capacity,
        start_depot=depot,
        end_depot=depot,
        tw_early=_scaled(instance.depot.ready),
        tw_late=_scaled(instance.depot.due),
        fixed_cost=math.ceil(2 * longest * SCALE * n),
    )
    for c in instance.customers[1:]:
        model.add_client(
            locations[c.number],
            delivery=c.demand,
            service_duration=_scaled(c.service),
            tw_early=_scaled(c.ready),
            tw_late=_scaled(c.due),
        )
    for i, a in enumerate(locations):
        for j, b in enumerate(locations):
            exact = instance.distance(i, j) * SCALE
            model.add_edge(a, b, distance=round(exact), duration=math.ceil(exact - 1e-9))
    found = model.solve(stop=MaxRuntime(seconds), display=False, seed=1)
    first, elapsed = None, 0.0
    for runtime, datum in zip(found.stats.runtimes, found.stats.data, strict=True):
        elapsed += runtime
        if datum.best_feas:
            first = elapsed
            break
    # Client activities count clients from 0; customer numbers in the file start at 1.
    routes = [[a.idx + 1 for a in route if a.is_client()] for route in found.best.routes()]
    return routes, first


def _scaled(value: float) -> int:
    return round(value * SCALE)


def hasselt_day(orders: int = 300, seed: int = 7) -> PlanningRequest:
    """A Hasselt city-centre day: two hubs, three zones, 12 vehicles of three kinds, about 300 orders."""
    rng = random.Random(seed)
    day = datetime(2026, 11, 27, tzinfo=UTC)

    def at(hour: float) -> datetime:
        return day + timedelta(hours=hour)

    hubs = (
        Hub("hub-noord", "Hub Kuringen", GeoPoint(50.9420, 5.3050), (TimeWindow(at(5), at(20)),)),
        Hub("hub-zuid", "Hub Zuid", GeoPoint(50.9150, 5.3500), (TimeWindow(at(5), at(20)),)),
    )
    fleet = []
    for i in range(5):
        hub = hubs[i % 2].id
        fleet.append(
            Vehicle(f"van-{i}", VehicleKind.VAN, 700, 8, TimeWindow(at(6), at(16)), hub, hub, 45, 3200, 3500)
        )
    for i in range(4):
        hub = hubs[i % 2].id
        shift = TimeWindow(at(6), at(16))
        fleet.append(Vehicle(f"evan-{i}", VehicleKind.ELECTRIC_VAN, 550, 6, shift, hub, hub, 30, 3200, 3000))
    for i in range(3):
        shift = TimeWindow(at(7), at(17))
        hub = hubs[(i + 1) % 2].id
        fleet.append(Vehicle(f"bike-{i}", VehicleKind.CARGO_BIKE, 180, 1.5, shift, hub, hub, 5, 2400, 300))

    def box(lon0: float, lat0: float, lon1: float, lat1: float) -> Any:
        ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
        return area_from_geojson({"type": "Polygon", "coordinates": [ring]}, "zone")

    zones = (
        AccessZone(
            "voetgangerszone",
            "Voetgangerszone",
            box(5.3330, 50.9270, 5.3430, 50.9330),
            (
                AccessRule(VehicleKind.VAN, (TimeWindow(at(6), at(10)),)),
                AccessRule(VehicleKind.ELECTRIC_VAN, (TimeWindow(at(6), at(11)),)),
                AccessRule(VehicleKind.CARGO_BIKE),
            ),
        ),
        AccessZone(
            "markt",
            "Kolonel Dusartplein",
            box(5.3360, 50.9300, 5.3400, 50.9325),
            (
                AccessRule(VehicleKind.ELECTRIC_VAN, (TimeWindow(at(6), at(8)),)),
                AccessRule(VehicleKind.CARGO_BIKE),
            ),
        ),
        AccessZone(
            "binnen-ring",
            "Binnen de Groene Boulevard",
            box(5.3250, 50.9230, 5.3520, 50.9380),
            tuple(AccessRule(kind) for kind in VehicleKind),
            max_weight_kg=3500,
        ),
    )
    return PlanningRequest("71022", day, hubs, tuple(fleet), zones, tuple(_orders(rng, at, orders)))


def _orders(rng: random.Random, at: Any, count: int, prefix: str = "o") -> list[Order]:
    orders = []
    for i in range(count):
        place = GeoPoint(rng.uniform(50.9240, 50.9370), rng.uniform(5.3260, 5.3510))
        roll = rng.random()
        if roll < 0.1:
            recipient: ShopAddress | MarketStall = MarketStall("markt-2026-11-27", f"stall-{i}", place)
            windows: tuple[TimeWindow, ...] = (TimeWindow(at(6), at(8.5)),)
        else:
            recipient = ShopAddress(f"Winkel {i}", place)
            start = rng.choice((7, 8, 9, 10, 13, 14))
            windows = (TimeWindow(at(start), at(start + rng.choice((2, 3, 4)))),)
            if roll > 0.8:
                windows = (TimeWindow(at(7), at(9)), TimeWindow(at(13), at(15)))
        pickup: HubPickup | SupplierPickup = HubPickup(rng.choice(("hub-noord", "hub-zuid")))
        if rng.random() < 0.07:
            pickup = SupplierPickup(f"Leverancier {i}", _near_ring(rng), (TimeWindow(at(6), at(12)),), 240)
        orders.append(
            Order(
                id=f"{prefix}{i}",
                shipper="0403.170.701",
                recipient=recipient,
                windows=windows,
                weight_kg=round(rng.uniform(2, 25), 1),
                volume_m3=round(rng.uniform(0.02, 0.35), 2),
                pickup=pickup,
                service_s=rng.choice((120, 180, 240)),
                priority=rng.choice((0, 1, 1, 2, 3)),
            )
        )
    return orders


def matrices_for(request: PlanningRequest, replan: ReplanRequest | None = None) -> dict[str, Any]:
    points = layout(request, replan).points
    profiles = {v.speed_profile for v in request.vehicles}
    return {p.name: haversine_matrix(points, p) for p in profiles}


def run_hasselt(seconds: float, replan_seconds: float) -> list[dict[str, Any]]:
    request = hasselt_day()
    started = time.monotonic()
    first_seen: list[float] = []
    day_plan = plan(
        request,
        matrices_for(request),
        PlanningSettings(time_limit_s=seconds - 1.0),
        on_progress=lambda p: first_seen.append(p.elapsed_s) if not first_seen else None,
    )
    planned_in = time.monotonic() - started
    rows = [_hasselt_row("hasselt-day", request, day_plan, planned_in, first_seen)]
    replan = _midday(request, day_plan)
    started = time.monotonic()
    first_seen = []
    matrices = matrices_for(replan.request, replan)
    second = plan(
        replan.request,
        matrices,
        PlanningSettings(time_limit_s=replan_seconds - 1.0),
        replan=replan,
        on_progress=lambda p: first_seen.append(p.elapsed_s) if not first_seen else None,
    )
    rows.append(
        _hasselt_row("hasselt-replan-20-new", replan.request, second, time.monotonic() - started, first_seen)
    )
    kept = all(
        any(s.completed and s.order_id == o.order_id for r in second.routes for s in r.stops)
        for o in replan.outcomes
    )
    rows[-1]["completed_stops_kept"] = kept
    return rows


def _midday(request: PlanningRequest, day_plan: Plan) -> ReplanRequest:
    """At 10:00 every stop served before then is done; 20 new orders arrive for the afternoon."""
    cutoff = request.origin + timedelta(hours=10)
    outcomes, states = [], []
    for route in day_plan.routes:
        done = [s for s in route.stops if s.departure <= cutoff]
        outcomes += [StopOutcome(s.order_id, s.kind, StopStatus.DONE, s.departure) for s in done]
        if done:
            states.append(VehicleState(route.vehicle_id, done[-1].location, max(cutoff, done[-1].departure)))
    rng = random.Random(11)
    new = _orders(rng, lambda h: request.origin + timedelta(hours=h), 20, prefix="new")
    # Vehicles on the road cannot load at a hub again, so the new orders are collected at suppliers.
    collect = (TimeWindow(cutoff, cutoff + timedelta(hours=4)),)
    new = [
        replace(
            o,
            windows=(TimeWindow(cutoff + timedelta(hours=3), cutoff + timedelta(hours=6)),),
            pickup=SupplierPickup(f"Leverancier {o.id}", _near_ring(rng), collect),
        )
        for o in new
    ]
    extended = replace(request, orders=(*request.orders, *new))
    return ReplanRequest(extended, day_plan, tuple(outcomes), tuple(states))


def _near_ring(rng: random.Random) -> GeoPoint:
    return GeoPoint(rng.uniform(50.915, 50.945), rng.uniform(5.31, 5.36))


def _hasselt_row(
    name: str, request: PlanningRequest, result: Plan, seconds: float, first: list[float]
) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for u in result.unassigned:
        reasons[u.reason.value] = reasons.get(u.reason.value, 0) + 1
    return {
        "instance": name,
        "solver": "ortools",
        "orders": len(request.orders),
        "vehicles": sum(1 for r in result.routes if any(not s.completed for s in r.stops)),
        "distance": result.distance_m,
        "feasible": validate_plan(request, result) == [],
        "unassigned": reasons,
        "seconds_to_first_solution": round(first[0], 3) if first else None,
        "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*", type=Path, help="instance files (default: the shipped ones)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per instance and solver")
    parser.add_argument("--no-peer", action="store_true", help="skip PyVRP")
    parser.add_argument("--searches", type=int, default=min(2, os.cpu_count() or 1), help="parallel searches")
    parser.add_argument("--no-hasselt", action="store_true", help="skip the Hasselt day")
    args = parser.parse_args(argv)
    folder = data_folder()
    bks = best_known(folder)
    rows: list[dict[str, Any]] = []
    for path in args.files or default_instances(folder):
        instance = load_instance(path)
        started = time.monotonic()
        routes, first = run_ortools(instance, args.time_limit, args.searches)
        rows.append(result(instance, "ortools", routes, first, time.monotonic() - started, bks))
        print(json.dumps(rows[-1]), file=sys.stderr)
        if not args.no_peer:
            started = time.monotonic()
            routes, first = run_pyvrp(instance, args.time_limit)
            rows.append(result(instance, "pyvrp", routes, first, time.monotonic() - started, bks))
            print(json.dumps(rows[-1]), file=sys.stderr)
    if not args.no_hasselt:
        rows += run_hasselt(min(args.time_limit, 30.0), 5.0)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
