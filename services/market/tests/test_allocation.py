import asyncio
from decimal import Decimal

import pytest

from market.allocation import allocate, release_round
from market.allocation.audit import audit
from market.allocation.problem import Problem, build_problem
from market.allocation.walk import State, reseat, swap_for_wishes
from market.domain import (
    AllocationResult,
    DailyPlaceMethod,
    DayAllocationInput,
    DayRequest,
    MarketPlan,
    Obstacle,
    Regulation,
    RejectionReason,
    Row,
    Stall,
    StallFeature,
)
from market.greedy import allocate_greedy

FOOD = frozenset({StallFeature.FOOD})


def plan_of(*rows: str, special: dict[str, dict[str, object]] | None = None) -> MarketPlan:
    """Rows written as 'A1 A2 | A3': stall numbers, a bar is an obstacle after the stall before it."""
    stalls, built = [], []
    for r, text in enumerate(rows):
        numbers: list[str] = []
        obstacles = []
        for token in text.split():
            if token == "|":
                obstacles.append(Obstacle(numbers[-1]))
                continue
            extra = (special or {}).get(token, {})
            stalls.append(Stall(token, Decimal(3), 3.0 * len(numbers), 10.0 * r, **extra))  # type: ignore[arg-type]
            numbers.append(token)
        built.append(Row(f"row{r}", tuple(numbers), tuple(obstacles)))
    return MarketPlan(tuple(stalls), tuple(built))


def day(plan: MarketPlan, *requests: DayRequest, **kwargs: object) -> DayAllocationInput:
    base: dict[str, object] = {"regulation": Regulation(), "seed": 42, "time_limit_s": 2.0}
    return DayAllocationInput(plan=plan, requests=tuple(requests), **(base | kwargs))  # type: ignore[arg-type]


def run(source: DayAllocationInput) -> AllocationResult:
    result = allocate(source)
    assert audit(source, result) == []
    return result


def rejected(result: AllocationResult, trader_id: str) -> RejectionReason:
    return result.rejections[trader_id].code


def test_ineligible_trader_is_rejected_as_not_eligible() -> None:
    result = run(day(plan_of("1 2"), DayRequest("t", ineligible_reason="no insurance")))
    assert rejected(result, "t") is RejectionReason.NOT_ELIGIBLE
    assert "no insurance" in result.explanations["t"]


def test_holder_keeps_own_stall_even_when_an_applicant_prefers_it() -> None:
    source = day(
        plan_of("1 2"),
        DayRequest("applicant", priority_group=2, preferred_stalls=("1",), anywhere=False),
        DayRequest("holder", priority_group=1, own_stalls=("1",)),
    )
    result = run(source)
    assert result.assignments["holder"] == ("1",)
    assert rejected(result, "applicant") is RejectionReason.PREFERENCES_UNAVAILABLE


def test_holder_asking_to_move_gets_a_free_preferred_stall() -> None:
    mover = DayRequest("mover", own_stalls=("1",), wants_move=True, preferred_stalls=("3",))
    result = run(day(plan_of("1 2 3"), mover))
    assert result.assignments["mover"] == ("3",)
    assert "moved" in result.explanations["mover"]


def test_holder_cannot_move_onto_another_holders_stall() -> None:
    mover = DayRequest("mover", own_stalls=("1",), wants_move=True, preferred_stalls=("3",))
    result = run(day(plan_of("1 2 3"), mover, DayRequest("other", own_stalls=("3",))))
    assert result.assignments == {"mover": ("1",), "other": ("3",)}


def test_holder_whose_own_stall_is_unavailable_is_placed_elsewhere_first() -> None:
    source = day(
        plan_of("1 2"),
        DayRequest("applicant", priority_group=2),
        DayRequest("holder", priority_group=2, own_stalls=("1",)),
        unavailable_stalls=frozenset({"1"}),
    )
    result = run(source)
    assert result.assignments["holder"] == ("2",)
    assert rejected(result, "applicant") is RejectionReason.MARKET_FULL


def test_displaced_holder_without_any_place_gets_own_stall_unavailable() -> None:
    source = day(plan_of("1"), DayRequest("holder", own_stalls=("1",)), unavailable_stalls=frozenset({"1"}))
    assert rejected(run(source), "holder") is RejectionReason.OWN_STALL_UNAVAILABLE


def test_specialised_stall_goes_first_to_that_specialisation() -> None:
    plan = plan_of("1", "2", special={"1": {"specialisation": "fish"}})
    source = day(
        plan,
        DayRequest("anyone", priority_group=1, registered_on=None),
        DayRequest("fishmonger", priority_group=4, specialisation="fish", preferred_stalls=("2",)),
    )
    result = run(source)
    assert result.assignments == {"fishmonger": ("1",), "anyone": ("2",)}


def test_unused_specialised_stall_is_released_to_everyone() -> None:
    plan = plan_of("1", special={"1": {"specialisation": "fish"}})
    result = run(day(plan, DayRequest("baker", specialisation="bread")))
    assert result.assignments == {"baker": ("1",)}


def test_food_stall_goes_to_the_trader_who_needs_it_and_food_needs_a_food_stall() -> None:
    plan = plan_of("1 2", special={"2": {"features": FOOD}})
    source = day(
        plan,
        DayRequest("clothes", priority_group=1, preferred_stalls=("2",)),
        DayRequest("fries", priority_group=4, needs=FOOD),
        DayRequest("waffles", priority_group=4, needs=FOOD),
    )
    result = run(source)
    assert result.assignments["fries"] == ("2",)
    assert result.assignments["clothes"] == ("1",)
    assert rejected(result, "waffles") is RejectionReason.MARKET_FULL


def test_higher_priority_group_wins_the_last_stall() -> None:
    source = day(plan_of("1"), DayRequest("low", priority_group=4), DayRequest("high", priority_group=2))
    result = run(source)
    assert result.assignments == {"high": ("1",)}
    assert result.placed_per_group == {2: 1}


def test_seniority_decides_within_a_group() -> None:
    from datetime import date

    source = day(
        plan_of("1"),
        DayRequest("junior", registered_on=date(2022, 1, 1)),
        DayRequest("senior", registered_on=date(2012, 1, 1)),
    )
    assert run(source).assignments == {"senior": ("1",)}


def test_seeded_lottery_is_reproducible_and_logged() -> None:
    lottery = Regulation(method=DailyPlaceMethod.SEEDED_LOTTERY)
    requests = [DayRequest(f"t{n}") for n in range(6)]
    winners = set()
    for seed in range(8):
        result = run(day(plan_of("1"), *requests, regulation=lottery, seed=seed))
        assert result.seed == seed and result.method is DailyPlaceMethod.SEEDED_LOTTERY
        assert (
            run(day(plan_of("1"), *requests, regulation=lottery, seed=seed)).assignments == result.assignments
        )
        winners.add(next(iter(result.assignments)))
    assert len(winners) > 1


def test_multi_stall_trader_gets_a_contiguous_run_not_across_an_obstacle() -> None:
    result = run(day(plan_of("1 | 2", "3 4"), DayRequest("t", min_stalls=2, max_stalls=2)))
    assert result.assignments == {"t": ("3", "4")}


def test_no_adjacent_run_when_free_stalls_are_split_by_an_obstacle() -> None:
    result = run(day(plan_of("1 | 2"), DayRequest("t", min_stalls=2, max_stalls=2)))
    assert rejected(result, "t") is RejectionReason.NO_ADJACENT_RUN


def test_minimum_not_available_when_fewer_stalls_are_free() -> None:
    source = day(plan_of("1 2 3"), DayRequest("h", own_stalls=("1", "2")), DayRequest("t", min_stalls=2))
    assert rejected(run(source), "t") is RejectionReason.MINIMUM_NOT_AVAILABLE


def test_nobody_gets_three_stalls_before_everyone_who_wanted_two_has_two() -> None:
    source = day(
        plan_of("1 2 3 4"),
        DayRequest("first", priority_group=1, max_stalls=3),
        DayRequest("second", priority_group=2, max_stalls=3),
    )
    result = run(source)
    assert sorted(len(stalls) for stalls in result.assignments.values()) == [2, 2]


def test_extra_stalls_go_to_whoever_can_still_grow() -> None:
    result = run(day(plan_of("1 2 3 4 5"), DayRequest("a", max_stalls=3), DayRequest("b", max_stalls=3)))
    assert sorted(len(stalls) for stalls in result.assignments.values()) == [2, 3]


def test_quota_limits_a_specialisation_and_rejects_as_category_full() -> None:
    source = day(
        plan_of("1 2 3"),
        DayRequest("cheese1", specialisation="cheese"),
        DayRequest("cheese2", specialisation="cheese"),
        regulation=Regulation(quotas={"cheese": 1}),
    )
    result = run(source)
    assert len(result.assignments) == 1
    assert rejected(result, next(iter(result.rejections))) is RejectionReason.CATEGORY_FULL


def test_holders_own_stalls_are_exempt_from_the_quota() -> None:
    source = day(
        plan_of("1 2 3"),
        DayRequest("holder", specialisation="cheese", own_stalls=("1", "2")),
        DayRequest("applicant", specialisation="cheese"),
        regulation=Regulation(quotas={"cheese": 1}),
    )
    result = run(source)
    assert result.assignments["holder"] == ("1", "2")
    assert rejected(result, "applicant") is RejectionReason.CATEGORY_FULL


def test_preferences_decide_between_equally_entitled_options() -> None:
    source = day(
        plan_of("1 2 3"),
        DayRequest("a", preferred_stalls=("2", "3")),
        DayRequest("b", preferred_stalls=("2",)),
    )
    result = run(source)
    assert result.assignments == {"a": ("3",), "b": ("2",)}
    assert result.preference_score == 9 + 10


def test_market_full_when_every_suitable_stall_is_taken() -> None:
    source = day(plan_of("1"), DayRequest("a", priority_group=1), DayRequest("b", priority_group=2))
    assert rejected(run(source), "b") is RejectionReason.MARKET_FULL


def test_result_carries_method_seed_flag_optimality_and_explanations() -> None:
    source = day(plan_of("1 2"), DayRequest("a", max_stalls=2), final=True, seed=99)
    result = run(source)
    assert (result.final, result.seed, result.optimal, result.solver) == (True, 99, True, "cp-sat")
    assert result.stalls_given == 2
    assert set(result.explanations) == {"a"} and "1, 2" in result.explanations["a"]


def test_release_round_gives_no_show_stalls_to_walk_ins() -> None:
    source = day(plan_of("1 2"), DayRequest("holder", own_stalls=("1",)), DayRequest("applicant"))
    first = run(source)
    walk_in = DayRequest("walk-in", preferred_stalls=("1",))
    second = release_round(first, source, present={"applicant"}, walk_ins=[walk_in])
    assert second.assignments == {"applicant": ("2",), "walk-in": ("1",)}
    assert second.seed == first.seed


def test_release_round_respects_the_quota_left_after_the_first_round() -> None:
    source = day(
        plan_of("1 2 3"), DayRequest("a", specialisation="fish"), regulation=Regulation(quotas={"fish": 1})
    )
    first = run(source)
    second = release_round(first, source, present={"a"}, walk_ins=[DayRequest("b", specialisation="fish")])
    assert second.rejections["b"].code is RejectionReason.CATEGORY_FULL


async def test_allocation_runs_off_the_event_loop() -> None:
    source = day(plan_of("1 2"), DayRequest("a"))
    result = await asyncio.to_thread(allocate, source)
    assert result.assignments == {"a": ("1",)} or result.assignments == {"a": ("2",)}


def test_exact_allocator_beats_greedy_where_the_walk_blocks_a_run() -> None:
    # A list walk gives the senior its favourite middle stall and splits the row; placing both comes first.
    source = day(
        plan_of("1 2 3"),
        DayRequest("senior", priority_group=2, preferred_stalls=("2",)),
        DayRequest("pair", priority_group=3, min_stalls=2, max_stalls=2),
    )
    exact, greedy = run(source), allocate_greedy(source)
    assert set(exact.assignments) == {"senior", "pair"}
    assert greedy.rejections["pair"].code is RejectionReason.NO_ADJACENT_RUN


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_allocator_places_at_least_as_many_per_group_as_greedy(seed: int) -> None:
    import random

    rng = random.Random(seed)
    rows = [" ".join(f"{r}-{i}" for i in range(rng.randint(2, 5))) for r in range(8)]
    plan = plan_of(*rows)
    numbers = [s.number for s in plan.stalls]
    requests = [
        DayRequest(
            f"t{n}",
            priority_group=rng.choice((2, 3, 4)),
            min_stalls=rng.choice((1, 1, 2)),
            max_stalls=3,
            preferred_stalls=tuple(rng.sample(numbers, 4)),
            anywhere=rng.random() < 0.6,
        )
        for n in range(22)
    ]
    source = day(plan, *requests, seed=seed)
    exact, greedy = run(source), allocate_greedy(source)
    for group, count in greedy.placed_per_group.items():
        assert exact.placed_per_group.get(group, 0) >= count
    assert exact.optimal


def test_a_special_match_does_not_cost_a_placement_the_walk_makes_in_a_higher_group() -> None:
    # Both stalls are fish stalls. The walk gives "fish" the first one, so "fish_a" (only A) stays out and B,
    # unused by the fishmongers who can stand there, is released to "only_b" of group 2: a legal allocation.
    # Swapping the fishmongers would match one more fish stall, but only by leaving out "only_b", which the
    # special-first objective preferred; the walk's placements per group are a floor for it.
    plan = plan_of("A B", special={"A": {"specialisation": "fish"}, "B": {"specialisation": "fish"}})
    source = day(
        plan,
        DayRequest("only_b", priority_group=2, preferred_stalls=("B",), anywhere=False),
        DayRequest("fish", priority_group=3, specialisation="fish"),
        DayRequest(
            "fish_a", priority_group=4, specialisation="fish", preferred_stalls=("A",), anywhere=False
        ),
    )
    greedy = allocate_greedy(source)
    assert audit(source, greedy) == []
    assert greedy.assignments == {"only_b": ("B",), "fish": ("A",)}
    exact = run(source)
    assert exact.optimal
    assert exact.placed_per_group == greedy.placed_per_group == {2: 1, 3: 1}
    assert rejected(exact, "fish_a") is RejectionReason.PREFERENCES_UNAVAILABLE


def test_a_higher_group_still_wins_a_place_the_walk_gave_to_a_lower_group() -> None:
    # The walk puts "evi" on the first EVI stall, the only one "senior" (group 1) wants, and the pair of
    # group 2 takes B and C. The floor is on the walk's placement by priority order, not on every group.
    evi = frozenset({StallFeature.EVI})
    source = day(
        plan_of("A B C", "D", special={"A": {"features": evi}, "C": {"features": evi}}),
        DayRequest("pair", priority_group=2, min_stalls=2, max_stalls=2, anywhere=False),
        DayRequest("senior", priority_group=1, preferred_stalls=("A",), anywhere=False),
        DayRequest("evi", priority_group=1, needs=evi),
    )
    greedy = allocate_greedy(source)
    assert greedy.assignments == {"evi": ("A",), "pair": ("B", "C")}
    exact = run(source)
    assert exact.assignments == {"evi": ("C",), "senior": ("A",)}
    assert exact.placed_per_group == {1: 2}


def test_greedy_baseline_grows_in_rounds_without_blocking_a_neighbour() -> None:
    # In round 2 the walk grows "a" towards "b" and "b" cannot grow; in round 3 "a" would then have three
    # stalls while "b" wanted two and has one. The end stall goes back to "b".
    source = day(
        plan_of("1 2 3 4"),
        DayRequest("a", priority_group=2, max_stalls=3, preferred_stalls=("3",)),
        DayRequest("b", priority_group=3, max_stalls=2, preferred_stalls=("1",)),
    )
    greedy = allocate_greedy(source)
    assert audit(source, greedy) == []
    assert greedy.assignments == {"a": ("3", "4"), "b": ("1", "2")}
    assert run(source).assignments == greedy.assignments


def placed_runs(problem: Problem, given: dict[str, str]) -> dict[int, tuple[int, ...]]:
    """One stall per trader, by trader id and stall number, as the walks see it: rank to stall indices."""
    index = {number: i for i, number in enumerate(problem.numbers)}
    return {t.rank: (index[given[t.request.trader_id]],) for t in problem.traders}


def wishing_day(row: str, fish_stall: str, **wishes: tuple[str, ...]) -> Problem:
    """Traders a (group 2), b (group 3) and a fishmonger (group 4) with wishes; one row, one fish stall."""
    groups = {"a": 2, "b": 3, "fish": 4}
    requests = [
        DayRequest(t, groups[t], specialisation="fish" if t == "fish" else None, preferred_stalls=wish)
        for t, wish in wishes.items()
    ]
    return build_problem(day(plan_of(row, special={fish_stall: {"specialisation": "fish"}}), *requests))


def seated(state: State) -> dict[str, tuple[str, ...]]:
    problem = state.problem
    return {t.request.trader_id: problem.run_numbers(state.runs[t.rank]) for t in problem.traders}


def test_reseat_moves_placed_traders_to_wanted_stalls_nobody_else_is_to_get() -> None:
    problem = wishing_day("1 2 3 4", "4", a=("3", "2"), b=("1",), fish=("1",))
    state = reseat(problem, placed_runs(problem, {"a": "1", "b": "3", "fish": "4"}))
    # "a" may not take 3, which "b" is to get; 2 is free. "b" then takes 1, which "a" left. "fish" keeps the
    # fish stall: 1 would be its wish, but not at the cost of the special match.
    assert seated(state) == {"a": ("2",), "b": ("1",), "fish": ("4",)}


def test_swap_for_wishes_trades_places_only_when_both_keep_what_they_are_entitled_to() -> None:
    problem = wishing_day("1 2 3", "3", a=("2", "3"), b=("1",), fish=("2",))
    state = State(problem)
    for rank, run in placed_runs(problem, {"a": "1", "b": "2", "fish": "3"}).items():
        state.place(problem.traders[rank], run)
    swap_for_wishes(state)
    # "a" and "b" trade; "fish" would like 2 as well but keeps the fish stall meant for it.
    assert seated(state) == {"a": ("2",), "b": ("1",), "fish": ("3",)}
