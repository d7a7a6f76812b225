"""The greedy list-walk baseline: traders in priority order take the best free run, then grow in rounds."""

from __future__ import annotations

from market.allocation.explain import build_result
from market.allocation.problem import build_problem
from market.allocation.walk import greedy_state, grow_in_rounds
from market.domain import AllocationResult, DayAllocationInput


def allocate_greedy(source: DayAllocationInput) -> AllocationResult:
    """Allocate a market day the way a list walk does; the yardstick for the exact allocator."""
    state = greedy_state(build_problem(source))
    grow_in_rounds(state)
    return build_result(state, solver="greedy", optimal=False)
