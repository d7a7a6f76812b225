"""The greedy list-walk baseline: traders in priority order take the best free run, then grow in rounds."""

from __future__ import annotations

from market.allocation.explain import build_result
from market.allocation.problem import build_problem
from market.allocation.walk import greedy_state, grow_in_rounds, rebalance_rounds
from market.domain import AllocationResult, DayAllocationInput


def allocate_greedy(source: DayAllocationInput) -> AllocationResult:
    """Allocate a market day the way a list walk does; the yardstick for the exact allocator.

    Growing in rounds, a trader may take the stall a neighbour later in the order needed for their second;
    the neighbour then gets it back from that trader's end (rule 5: nobody 3 stalls before all who wanted 2
    have 2), as the exact allocator does. A handover can leave room in a quota, so growing comes again.
    """
    state = greedy_state(build_problem(source))
    grow_in_rounds(state)
    rebalance_rounds(state)
    grow_in_rounds(state)
    return build_result(state, solver="greedy", optimal=False)
