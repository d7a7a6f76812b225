"""Benchmark the market allocators on a Dappermarkt-size day and a 2,000-stall day; prints one JSON object."""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from market.allocation import allocate
from market.allocation.audit import audit
from market.domain import (
    AllocationResult,
    DayAllocationInput,
    DayRequest,
    MarketPlan,
    Obstacle,
    Regulation,
    Row,
    Stall,
    StallFeature,
)
from market.greedy import allocate_greedy

SPECIALISATIONS = tuple(f"spec-{n}" for n in range(10))


def generate_day(
    *, stalls: int, rows: int, traders: int, preferences: int, seed: int, holder_share: float = 0.35
) -> DayAllocationInput:
    """A random, realistic market day: rows of stalls, holders on own stalls, applicants with wishes."""
    rng = random.Random(seed)
    plan = _plan(rng, stalls, rows)
    segments = plan.segments()
    free_segments = [list(segment) for segment in segments]
    requests = []
    holders = [rng.random() < holder_share for _ in range(traders)]
    movers = [holder and rng.random() < 0.1 for holder in holders]
    per_trader = preferences / max(1, sum(not h or m for h, m in zip(holders, movers, strict=True)))
    for n in range(traders):
        own = _own_stalls(rng, free_segments) if holders[n] else ()
        wanted = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
        minimum = 2 if wanted >= 2 and rng.random() < 0.2 else 1
        needs = _needs(rng)
        spec = rng.choice(SPECIALISATIONS) if rng.random() < 0.7 else None
        wants_move = bool(own) and movers[n]
        count = 0 if own and not wants_move else max(0, round(rng.gauss(per_trader, 4)))
        requests.append(
            DayRequest(
                trader_id=f"t{n:04d}",
                priority_group=1 if own else rng.choice((2, 3, 3, 4, 4, 4)),
                registered_on=date(2010, 1, 1) + timedelta(days=rng.randrange(5000)),
                specialisation=spec,
                min_stalls=max(minimum, len(own)) if own else minimum,
                max_stalls=max(wanted, len(own)),
                preferred_stalls=_preferences(rng, plan, segments, count),
                anywhere=rng.random() < 0.7,
                needs=needs,
                own_stalls=own,
                wants_move=wants_move,
                ineligible_reason="no valid proof of liability insurance" if rng.random() < 0.02 else None,
            )
        )
    quotas = {spec: max(4, round(stalls * 0.07)) for spec in SPECIALISATIONS}
    unavailable = frozenset(rng.sample([s.number for s in plan.stalls], max(1, stalls // 100)))
    return DayAllocationInput(
        plan=plan,
        regulation=Regulation(quotas=quotas),
        requests=tuple(requests),
        seed=seed,
        unavailable_stalls=unavailable,
    )


def _plan(rng: random.Random, stalls: int, rows: int) -> MarketPlan:
    sizes = [1] * rows
    for _ in range(stalls - rows):
        sizes[rng.randrange(rows)] += 1
    all_stalls = []
    all_rows = []
    number = 0
    for r, size in enumerate(sizes):
        names = []
        x = 0.0
        special_row = rng.random()
        for _ in range(size):
            number += 1
            length = rng.choice((Decimal(3), Decimal(4)))
            features = {StallFeature.ELECTRICITY} if rng.random() < 0.4 else set()
            if special_row < 0.12:
                features.add(StallFeature.FOOD)
            if rng.random() < 0.08:
                features.add(StallFeature.EVI)
            if rng.random() < 0.1:
                features.add(StallFeature.WATER)
            spec = rng.choice(SPECIALISATIONS) if rng.random() < 0.12 else None
            all_stalls.append(Stall(str(number), length, x, r * 12.0, spec, frozenset(features)))
            names.append(str(number))
            x += float(length)
        obstacles = (Obstacle(rng.choice(names[:-1]), "tree"),) if size > 3 and rng.random() < 0.3 else ()
        all_rows.append(Row(f"row-{r}", tuple(names), obstacles))
    return MarketPlan(tuple(all_stalls), tuple(all_rows))


def _own_stalls(rng: random.Random, free_segments: list[list[str]]) -> tuple[str, ...]:
    size = 2 if rng.random() < 0.25 else 1
    options = [segment for segment in free_segments if len(segment) >= size]
    if not options:
        return ()
    segment = rng.choice(options)
    start = rng.randrange(len(segment) - size + 1)
    own = tuple(segment[start : start + size])
    free_segments.remove(segment)
    free_segments.extend(part for part in (segment[:start], segment[start + size :]) if part)
    return own


def _needs(rng: random.Random) -> frozenset[StallFeature]:
    needs = set()
    if rng.random() < 0.08:
        needs.add(StallFeature.FOOD)
    if rng.random() < 0.04:
        needs.add(StallFeature.EVI)
    if rng.random() < 0.15:
        needs.add(StallFeature.ELECTRICITY)
    return frozenset(needs)


def _preferences(
    rng: random.Random, plan: MarketPlan, segments: tuple[tuple[str, ...], ...], count: int
) -> tuple[str, ...]:
    if count <= 0:
        return ()
    # Traders like an area of the market: a few neighbouring segments around a favourite one.
    centre = rng.randrange(len(segments))
    area = [n for s in range(max(0, centre - 4), min(len(segments), centre + 5)) for n in segments[s]]
    return tuple(rng.sample(area, min(count, len(area))))


def run_case(source: DayAllocationInput) -> dict[str, object]:
    # The machine is shared: the load when the case started says how much of the wall time the solver had.
    load = [round(value, 2) for value in os.getloadavg()]
    started = time.perf_counter()
    result = allocate(source)
    seconds = time.perf_counter() - started
    greedy = allocate_greedy(source)
    return {
        "stalls": len(source.plan.stalls),
        "traders": len(source.requests),
        "preferences": sum(len(request.preferred_stalls) for request in source.requests),
        "seconds": round(seconds, 3),
        "load_average": load,
        "optimal": result.optimal,
        "applicants_placed": _placed(result),
        "greedy_applicants_placed": _placed(greedy),
        "preference_score": result.preference_score,
        "greedy_preference_score": greedy.preference_score,
        "stalls_given": result.stalls_given,
        "greedy_stalls_given": greedy.stalls_given,
        "special_stalls_matched": _special_matches(source, result),
        "greedy_special_stalls_matched": _special_matches(source, greedy),
        "priority_violations": len(audit(source, result)),
        "greedy_priority_violations": len(audit(source, greedy)),
    }


def _special_matches(source: DayAllocationInput, result: AllocationResult) -> int:
    """Applicants on a special stall meant for them (rule 3 ranks this above the priority groups)."""
    stalls = {stall.number: stall for stall in source.plan.stalls}
    requests = {request.trader_id: request for request in source.requests}
    kinds = {StallFeature.FOOD, StallFeature.EVI}
    return sum(
        not requests[trader_id].is_holder
        and any(
            (
                stalls[n].specialisation is not None
                and stalls[n].specialisation == requests[trader_id].specialisation
            )
            or bool(stalls[n].features & requests[trader_id].needs & kinds)
            for n in numbers
        )
        for trader_id, numbers in result.assignments.items()
    )


def _placed(result: AllocationResult) -> dict[str, int]:
    return {str(group): count for group, count in result.placed_per_group.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--only", choices=("dappermarkt", "large"))
    args = parser.parse_args()
    cases = {
        "dappermarkt": replace(
            generate_day(stalls=237, rows=70, traders=124, preferences=1600, seed=args.seed), time_limit_s=2.0
        ),
        "large": replace(
            generate_day(stalls=2000, rows=400, traders=1500, preferences=19000, seed=args.seed),
            time_limit_s=9.0,
        ),
    }
    report = {name: run_case(source) for name, source in cases.items() if args.only in (None, name)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
