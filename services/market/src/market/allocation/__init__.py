"""Allocation of a market day's stalls: exact (CP-SAT) first round and the release round for walk-ins."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import replace

from market.allocation.explain import build_result
from market.allocation.problem import build_problem
from market.allocation.solver import solve
from market.allocation.walk import (
    State,
    grow_in_rounds,
    place_in_order,
    rebalance_rounds,
    relocate,
    repair_priorities,
)
from market.domain import AllocationResult, DayAllocationInput, DayRequest, preference_points

__all__ = ["allocate", "release_round"]

# Kept back from the solver's time for the final walk and the explanations.
FINISHING_SHARE = 0.05


def allocate(source: DayAllocationInput) -> AllocationResult:
    """Allocate a market day within `source.time_limit_s`; blocking, so call it via `asyncio.to_thread`."""
    deadline = time.monotonic() + source.time_limit_s * (1 - FINISHING_SHARE)
    problem = build_problem(source)
    solved = solve(problem, deadline)
    _fill_gaps(solved.state)
    return build_result(solved.state, solver="cp-sat", optimal=solved.optimal)


def _fill_gaps(state: State) -> None:
    """Local repairs for what pruned candidates or a time limit left: each only improves the objectives.

    Moving a trader to a better place frees stalls, so placing in priority order comes again after it.
    """
    repair_priorities(state)
    place_in_order(state, state.problem.traders)
    grow_in_rounds(state)
    relocate(state)
    rebalance_rounds(state)
    repair_priorities(state)
    place_in_order(state, state.problem.traders)
    grow_in_rounds(state)


def release_round(
    first: AllocationResult,
    source: DayAllocationInput,
    present: Collection[str],
    walk_ins: Sequence[DayRequest],
    *,
    seed: int | None = None,
) -> AllocationResult:
    """At the release time, stalls of absent holders and no-shows go to the walk-ins present.

    Present traders keep what they got in the first round; everything else that is free is allocated afresh.
    """
    kept = {trader: stalls for trader, stalls in first.assignments.items() if trader in present}
    taken = {number for stalls in kept.values() for number in stalls}
    by_id = {request.trader_id: request for request in source.requests}
    quotas = dict(source.regulation.quotas)
    for trader_id, stalls in kept.items():
        request = by_id.get(trader_id)
        if request is not None and request.specialisation in quotas:
            extra = max(0, len(stalls) - len(request.own_stalls))
            quotas[request.specialisation] = max(0, quotas[request.specialisation] - extra)
    second = allocate(
        replace(
            source,
            requests=tuple(request for request in walk_ins if request.trader_id not in kept),
            regulation=replace(source.regulation, quotas=quotas),
            unavailable_stalls=source.unavailable_stalls | taken,
            seed=first.seed if seed is None else seed,
        )
    )
    return _merge(first, second, kept, by_id)


def _merge(
    first: AllocationResult,
    second: AllocationResult,
    kept: dict[str, tuple[str, ...]],
    by_id: dict[str, DayRequest],
) -> AllocationResult:
    assignments = {**kept, **second.assignments}
    # Walk-ins placed in an earlier release round of the day have no first-round request or explanation.
    explanations = {trader: first.explanations.get(trader, "") for trader in kept}
    explanations.update(second.explanations)
    placed = dict(second.placed_per_group)
    points = second.preference_score
    for trader_id, stalls in kept.items():
        request = by_id.get(trader_id)
        if request is None:
            continue
        points += preference_points(request, stalls)
        if not request.is_holder:
            placed[request.priority_group] = placed.get(request.priority_group, 0) + 1
    return replace(
        second,
        assignments=assignments,
        explanations=explanations,
        order=first.order + tuple(t for t in second.order if t not in first.order),
        placed_per_group=dict(sorted(placed.items())),
        stalls_given=sum(len(stalls) for stalls in assignments.values()),
        preference_score=points,
    )
