"""Turn a solved state into the result: a reason for every trader left out and an explanation for everyone."""

from __future__ import annotations

from collections import Counter

from market.allocation.problem import Problem, Role, Trader
from market.allocation.walk import State
from market.domain import REJECTION_TEXT, AllocationResult, Rejection, RejectionReason


def rejection_reason(state: State, trader: Trader) -> RejectionReason:
    """The one reason a trader got nothing, judged on the stalls left free at the end."""
    problem = state.problem
    if trader.role is Role.INELIGIBLE:
        return RejectionReason.NOT_ELIGIBLE
    if trader.role is Role.DISPLACED:
        return RejectionReason.OWN_STALL_UNAVAILABLE
    spec = trader.request.specialisation
    if spec in problem.quota_cap and state.usage.get(spec, 0) + trader.min_len > problem.quota_cap[spec]:
        return RejectionReason.CATEGORY_FULL
    free = state.free_for(trader)
    if trader.preferred and not trader.request.anywhere and not free:
        return RejectionReason.PREFERENCES_UNAVAILABLE
    if not free:
        return RejectionReason.MARKET_FULL
    if len(free) < trader.min_len:
        return RejectionReason.MINIMUM_NOT_AVAILABLE
    return RejectionReason.NO_ADJACENT_RUN


def build_result(state: State, *, solver: str, optimal: bool) -> AllocationResult:
    problem = state.problem
    source = problem.source
    assignments = {}
    rejections = {}
    explanations = {}
    placed: Counter[int] = Counter()
    for trader in problem.traders:
        trader_id = trader.request.trader_id
        run = state.runs.get(trader.rank)
        if run is None:
            reason = rejection_reason(state, trader)
            rejections[trader_id] = Rejection(reason, REJECTION_TEXT[reason])
            explanations[trader_id] = _rejected_text(problem, trader, reason)
            continue
        assignments[trader_id] = problem.run_numbers(run)
        if trader.role is not Role.HOLDER:
            placed[trader.request.priority_group] += 1
        explanations[trader_id] = _placed_text(problem, trader, assignments[trader_id])
    return AllocationResult(
        assignments=assignments,
        rejections=rejections,
        method=source.regulation.method,
        seed=source.seed,
        optimal=optimal,
        final=source.final,
        order=tuple(t.request.trader_id for t in problem.traders),
        placed_per_group=dict(sorted(placed.items())),
        stalls_given=sum(len(run) for run in state.runs.values()),
        preference_score=sum(
            problem.location_points(problem.traders[r], run) for r, run in state.runs.items()
        ),
        explanations=explanations,
        solver=solver,
    )


def _position(problem: Problem, trader: Trader) -> str:
    return (
        f"priority group {trader.request.priority_group}, "
        f"position {trader.rank + 1} of {len(problem.traders)} "
        f"in the {problem.source.regulation.method.value.replace('_', ' ')} order "
        f"(seed {problem.source.seed})"
    )


def _placed_text(problem: Problem, trader: Trader, stalls: tuple[str, ...]) -> str:
    listed = ", ".join(stalls)
    if trader.role is Role.HOLDER:
        own = problem.run_numbers(trader.own)
        kept = "kept own stalls" if set(own) <= set(stalls) else f"moved from own stalls {', '.join(own)} to"
        return f"Subscription holder: {kept} {listed}."
    wanted = f"{len(stalls)} of at most {trader.max_len} stalls"
    preferred = [n for n in stalls if n in trader.request.preferred_stalls]
    liked = f"; preferred stalls given: {', '.join(preferred)}" if preferred else ""
    return f"Placed on {listed} ({wanted}{liked}); {_position(problem, trader)}."


def _rejected_text(problem: Problem, trader: Trader, reason: RejectionReason) -> str:
    detail = f" ({trader.request.ineligible_reason})" if trader.request.ineligible_reason else ""
    return f"Not placed: {REJECTION_TEXT[reason]}{detail}; {_position(problem, trader)}."
