from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

SPECS = ("fish", "cheese", "flowers")
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def plans(draw: st.DrawFn) -> MarketPlan:
    stalls: list[Stall] = []
    rows = []
    for r in range(draw(st.integers(1, 4))):
        numbers = []
        for i in range(draw(st.integers(1, 5))):
            number = f"{r}.{i}"
            features = draw(st.sets(st.sampled_from((StallFeature.FOOD, StallFeature.EVI)), max_size=1))
            spec = draw(st.none() | st.sampled_from(SPECS)) if draw(st.integers(0, 4)) == 0 else None
            stalls.append(Stall(number, Decimal(3), 3.0 * i, 10.0 * r, spec, frozenset(features)))
            numbers.append(number)
        cut = draw(st.none() | st.sampled_from(numbers[:-1])) if len(numbers) > 1 else None
        rows.append(Row(f"row{r}", tuple(numbers), (Obstacle(cut),) if cut else ()))
    return MarketPlan(tuple(stalls), tuple(rows))


@st.composite
def days(draw: st.DrawFn) -> DayAllocationInput:
    plan = draw(plans())
    numbers = [stall.number for stall in plan.stalls]
    free_segments = [list(segment) for segment in plan.segments()]
    requests = []
    for n in range(draw(st.integers(1, 9))):
        own: tuple[str, ...] = ()
        if free_segments and draw(st.integers(0, 3)) == 0:
            segment = free_segments.pop(draw(st.integers(0, len(free_segments) - 1)))
            own = tuple(segment[: draw(st.integers(1, min(2, len(segment))))])
        minimum = draw(st.integers(1, 2))
        requests.append(
            DayRequest(
                trader_id=f"t{n}",
                priority_group=draw(st.integers(1, 3)),
                specialisation=draw(st.none() | st.sampled_from(SPECS)),
                min_stalls=minimum,
                max_stalls=draw(st.integers(max(minimum, len(own)), 3)),
                preferred_stalls=tuple(draw(st.lists(st.sampled_from(numbers), unique=True, max_size=3))),
                anywhere=draw(st.booleans()),
                needs=frozenset(
                    draw(st.sets(st.sampled_from((StallFeature.FOOD, StallFeature.EVI)), max_size=1))
                ),
                own_stalls=own,
                wants_move=bool(own) and draw(st.booleans()),
                ineligible_reason="no insurance" if draw(st.integers(0, 9)) == 0 else None,
            )
        )
    quotas = draw(st.dictionaries(st.sampled_from(SPECS), st.integers(0, 3), max_size=2))
    unavailable = draw(st.sets(st.sampled_from(numbers), max_size=2))
    return DayAllocationInput(
        plan=plan,
        regulation=Regulation(quotas=quotas),
        requests=tuple(requests),
        seed=draw(st.integers(0, 2**31)),
        unavailable_stalls=frozenset(unavailable),
        time_limit_s=2.0,
    )


def placement_objective(source: DayAllocationInput, result: AllocationResult) -> list[int]:
    """Traders on a special stall meant for them first (rule 3), then placements per priority group."""
    stalls = {stall.number: stall for stall in source.plan.stalls}
    requests = {request.trader_id: request for request in source.requests}

    def on_own_kind(trader_id: str, numbers: tuple[str, ...]) -> bool:
        request = requests[trader_id]
        return not request.is_holder and any(
            (stalls[n].specialisation is not None and stalls[n].specialisation == request.specialisation)
            or bool(stalls[n].features & request.needs & {StallFeature.FOOD, StallFeature.EVI})
            for n in numbers
        )

    special = sum(on_own_kind(trader_id, numbers) for trader_id, numbers in result.assignments.items())
    return [special, *(result.placed_per_group.get(group, 0) for group in (1, 2, 3))]


@PROPERTY_SETTINGS
@given(days())
def test_allocation_breaks_no_rule(source: DayAllocationInput) -> None:
    """A stall is given once; runs are contiguous, in one row, not across an obstacle; quotas hold;
    every present trader has exactly one outcome; present holders keep an own stall; priorities hold."""
    result = allocate(source)
    assert audit(source, result) == []
    assert set(result.assignments).isdisjoint(result.rejections)
    assert set(result.assignments) | set(result.rejections) == {r.trader_id for r in source.requests}


@PROPERTY_SETTINGS
@given(days())
def test_same_input_and_seed_give_the_same_result(source: DayAllocationInput) -> None:
    first = allocate(source)
    again = allocate(replace(source, requests=tuple(reversed(source.requests))))
    assert (again.assignments, again.rejections, again.order) == (
        first.assignments,
        first.rejections,
        first.order,
    )


@PROPERTY_SETTINGS
@given(days())
def test_exact_allocator_places_at_least_what_greedy_places(source: DayAllocationInput) -> None:
    exact, greedy = allocate(source), allocate_greedy(source)
    assert placement_objective(source, exact) >= placement_objective(source, greedy)


@PROPERTY_SETTINGS
@given(days())
def test_exact_allocator_meets_wishes_at_least_as_well_when_placing_the_same_traders(
    source: DayAllocationInput,
) -> None:
    exact, greedy = allocate(source), allocate_greedy(source)
    same_placement = placement_objective(source, exact) == placement_objective(source, greedy)
    if same_placement and set(exact.assignments) == set(greedy.assignments):
        assert exact.preference_score >= greedy.preference_score


@PROPERTY_SETTINGS
@given(days())
def test_exact_allocator_places_fewer_in_a_group_than_greedy_only_for_a_higher_group(
    source: DayAllocationInput,
) -> None:
    """A special match never costs a placement the walk makes: by groups alone, exact is no worse."""
    exact, greedy = allocate(source), allocate_greedy(source)
    by_group = placement_objective(source, exact)[1:], placement_objective(source, greedy)[1:]
    assert by_group[0] >= by_group[1]
