from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from market.domain import (
    AbsencePeriod,
    Application,
    CandidateEntry,
    CandidateGroup,
    DailyPlaceMethod,
    DayRequest,
    DuplicateStallNumber,
    InvalidApplication,
    InvalidKbo,
    MarketPlan,
    NoticeTooShort,
    Obstacle,
    OverlappingStalls,
    PlaceChange,
    PreRegistrationOrder,
    Regulation,
    Row,
    Stall,
    StallFeature,
    Subscription,
    Tariff,
    Trader,
    TransferNotAllowed,
    UnknownStall,
    WeeklySchedule,
    candidate_queue,
    check_notice,
    daily_fee,
    eligibility_problem,
    format_kbo,
    is_absent,
    market_days,
    normalise_kbo,
    preference_points,
    priority_order,
    requests_for_day,
    transfer_subscription,
    validate_application,
    validate_plan,
    withdraw,
)

VALID_KBO = "0202.239.951"


def stall(number: str, x: float, y: float = 0.0, length: str = "3", **kwargs: object) -> Stall:
    return Stall(number, Decimal(length), x, y, **kwargs)  # type: ignore[arg-type]


def plan_of(*rows: tuple[str, ...], obstacles: dict[int, tuple[str, ...]] | None = None) -> MarketPlan:
    stalls = tuple(stall(n, x=3.0 * i, y=10.0 * r) for r, row in enumerate(rows) for i, n in enumerate(row))
    built = tuple(
        Row(f"r{r}", row, tuple(Obstacle(a) for a in (obstacles or {}).get(r, ())))
        for r, row in enumerate(rows)
    )
    return MarketPlan(stalls, built)


def test_segments_are_rows_cut_at_obstacles() -> None:
    plan = plan_of(("1", "2", "3", "4"), ("5",), obstacles={0: ("2",)})
    assert plan.segments() == (("1", "2"), ("3", "4"), ("5",))


def test_valid_plan_passes_validation() -> None:
    plan = plan_of(("1", "2"), ("3",))
    assert validate_plan(plan) is plan


def test_duplicate_stall_number_is_rejected_naming_the_field() -> None:
    plan = MarketPlan((stall("1", 0), stall("1", 5)), (Row("r", ("1",)),))
    with pytest.raises(DuplicateStallNumber) as caught:
        validate_plan(plan)
    assert caught.value.field == "stalls[1].number"


def test_overlapping_stalls_in_a_row_are_rejected() -> None:
    plan = MarketPlan((stall("1", 0), stall("2", 1.5)), (Row("r", ("1", "2")),))
    with pytest.raises(OverlappingStalls) as caught:
        validate_plan(plan)
    assert caught.value.field == "rows[0].stalls[1]"


def test_stalls_on_the_same_spot_overlap() -> None:
    plan = MarketPlan((stall("1", 0), stall("2", 0)), (Row("a", ("1",)), Row("b", ("2",))))
    with pytest.raises(OverlappingStalls):
        validate_plan(plan)


def test_row_listing_an_unknown_stall_is_rejected() -> None:
    plan = MarketPlan((stall("1", 0),), (Row("r", ("1", "9")),))
    with pytest.raises(UnknownStall) as caught:
        validate_plan(plan)
    assert caught.value.field == "rows[0].stalls[1]"


def test_non_positive_stall_length_is_rejected() -> None:
    plan = MarketPlan((stall("1", 0, length="0"),), (Row("r", ("1",)),))
    with pytest.raises(Exception, match="positive length"):
        validate_plan(plan)


@pytest.mark.parametrize("written", ["0202.239.951", "0202239951", "202239951", "0202 239 951"])
def test_kbo_number_is_accepted_in_its_usual_formats(written: str) -> None:
    assert normalise_kbo(written) == "0202239951"
    assert format_kbo(written) == VALID_KBO


@pytest.mark.parametrize("written", ["0202.239.952", "12345", "abcdefghij", "2202.239.951"])
def test_invalid_kbo_number_is_rejected(written: str) -> None:
    with pytest.raises(InvalidKbo) as caught:
        normalise_kbo(written)
    assert caught.value.field == "kbo_number"


def test_fee_per_metre_rounds_to_whole_cents_and_adds_electricity() -> None:
    stalls = [stall("1", 0, length="3.5"), stall("2", 4, length="4")]
    tariff = Tariff(per_metre_cents=133, electricity_cents=250)
    assert daily_fee(stalls, tariff, electricity=True) == round(7.5 * 133) + 250


def test_fee_per_stall_counts_stalls() -> None:
    assert daily_fee([stall("1", 0), stall("2", 3)], Tariff(per_stall_cents=1200)) == 2400


def test_market_days_follow_the_weekly_schedule_minus_closures() -> None:
    schedule = WeeklySchedule(frozenset({1, 4}), time(7), time(13))  # Tuesday and Friday
    days = market_days(schedule, date(2026, 12, 21), date(2027, 1, 3), closures={date(2026, 12, 25)})
    assert days == [date(2026, 12, 22), date(2026, 12, 29), date(2027, 1, 1)]


def trader(**kwargs: object) -> Trader:
    base: dict[str, object] = {
        "id": "t1",
        "kbo_number": VALID_KBO,
        "name": "Frituur Jos",
        "insurance_valid_until": date(2027, 1, 1),
    }
    return Trader(**(base | kwargs))  # type: ignore[arg-type]


def test_trader_with_valid_kbo_and_insurance_is_eligible() -> None:
    assert eligibility_problem(trader(), date(2026, 12, 1)) is None


def test_expired_insurance_makes_a_trader_ineligible() -> None:
    assert "insurance" in (eligibility_problem(trader(), date(2027, 2, 1)) or "")


def test_food_without_registration_makes_a_trader_ineligible() -> None:
    problem = eligibility_problem(trader(), date(2026, 12, 1), {StallFeature.FOOD})
    assert problem is not None and "food" in problem


def subscription(**kwargs: object) -> Subscription:
    base: dict[str, object] = {
        "trader_id": "t1",
        "market_id": "m",
        "stalls": ("4",),
        "specialisation": "flowers",
        "granted_on": date(2020, 1, 1),
    }
    return Subscription(**(base | kwargs))  # type: ignore[arg-type]


def test_transfer_keeps_the_specialisation_and_records_the_date() -> None:
    moved = transfer_subscription(subscription(), trader(id="t2"), date(2026, 3, 1))
    assert (moved.trader_id, moved.specialisation, moved.transferred_on) == (
        "t2",
        "flowers",
        date(2026, 3, 1),
    )


def test_transfer_needs_a_valid_kbo_number() -> None:
    with pytest.raises(InvalidKbo) as caught:
        transfer_subscription(subscription(), trader(kbo_number="0202.239.952"), date(2026, 3, 1))
    assert caught.value.field == "to.kbo_number"


def test_a_place_cannot_be_transferred_again_within_a_year() -> None:
    recent = subscription(transferred_on=date(2026, 1, 15))
    with pytest.raises(TransferNotAllowed):
        transfer_subscription(recent, trader(id="t3"), date(2027, 1, 14))
    assert transfer_subscription(recent, trader(id="t3"), date(2027, 1, 15)).trader_id == "t3"


def test_transfer_to_another_specialisation_is_refused() -> None:
    with pytest.raises(TransferNotAllowed):
        transfer_subscription(subscription(), trader(specialisation="fish"), date(2026, 3, 1))


def test_abolishing_needs_twelve_months_and_moving_six() -> None:
    check_notice(PlaceChange.ABOLISH, date(2026, 1, 31), date(2027, 1, 31))
    check_notice(PlaceChange.MOVE, date(2026, 8, 31), date(2027, 2, 28))
    with pytest.raises(NoticeTooShort):
        check_notice(PlaceChange.ABOLISH, date(2026, 1, 31), date(2027, 1, 30))
    with pytest.raises(NoticeTooShort):
        check_notice(PlaceChange.MOVE, date(2026, 1, 1), date(2026, 6, 30))


def test_candidate_register_orders_by_group_then_date() -> None:
    entries = [
        CandidateEntry("ext-early", "fish", CandidateGroup.EXTERNAL, date(2019, 1, 1)),
        CandidateEntry("move", "fish", CandidateGroup.CHANGE_OF_PLACE, date(2025, 1, 1)),
        CandidateEntry("displaced", "fish", CandidateGroup.DISPLACED, date(2026, 1, 1)),
        CandidateEntry("extension", "fish", CandidateGroup.EXTENSION, date(2024, 1, 1)),
        CandidateEntry("other-spec", "cheese", CandidateGroup.DISPLACED, date(2018, 1, 1)),
    ]
    assert [e.trader_id for e in candidate_queue(entries, "fish")] == [
        "displaced",
        "extension",
        "move",
        "ext-early",
    ]


def test_absence_period_covers_its_days() -> None:
    periods = [AbsencePeriod("t1", date(2026, 7, 1), date(2026, 7, 31))]
    assert is_absent(periods, "t1", date(2026, 7, 31))
    assert not is_absent(periods, "t1", date(2026, 8, 1))
    assert not is_absent(periods, "t2", date(2026, 7, 2))


def test_application_with_unknown_preferred_stall_names_the_field() -> None:
    plan = plan_of(("1", "2"))
    application = Application("t1", date(2026, 12, 1), preferred_stalls=("1", "7"))
    with pytest.raises(UnknownStall) as caught:
        validate_application(application, plan, Regulation())
    assert caught.value.field == "preferred_stalls[1]"


@pytest.mark.parametrize(
    ("minimum", "maximum", "field"), [(0, 1, "min_stalls"), (2, 1, "max_stalls"), (1, 4, "max_stalls")]
)
def test_application_stall_counts_are_checked(minimum: int, maximum: int, field: str) -> None:
    application = Application("t1", date(2026, 12, 1), min_stalls=minimum, max_stalls=maximum)
    with pytest.raises(InvalidApplication) as caught:
        validate_application(application, plan_of(("1",)), Regulation(max_stalls_per_trader=3))
    assert caught.value.field == field


def test_withdrawal_is_recorded_once() -> None:
    at = datetime(2026, 11, 30, 18, tzinfo=UTC)
    withdrawn = withdraw(Application("t1", date(2026, 12, 1)), at)
    assert withdrawn.withdrawn_at == at
    with pytest.raises(InvalidApplication):
        withdraw(withdrawn, at)


def test_preference_points_fall_with_rank() -> None:
    request = DayRequest("t", preferred_stalls=tuple(str(n) for n in range(1, 13)))
    assert preference_points(request, ("1",)) == 10
    assert preference_points(request, ("2", "12")) == 9
    assert preference_points(request, ("99",)) == 0


def test_priority_order_puts_holders_then_groups_then_seniority() -> None:
    requests = [
        DayRequest("junior", priority_group=2, registered_on=date(2020, 1, 1)),
        DayRequest("senior", priority_group=2, registered_on=date(2010, 1, 1)),
        DayRequest("group1", priority_group=1, registered_on=date(2024, 1, 1)),
        DayRequest("holder", priority_group=3, own_stalls=("1",)),
    ]
    assert priority_order(requests, Regulation(), seed=1) == ("holder", "group1", "senior", "junior")


def test_lottery_order_depends_only_on_the_seed() -> None:
    requests = [DayRequest(f"t{n}") for n in range(20)]
    lottery = Regulation(method=DailyPlaceMethod.SEEDED_LOTTERY)
    first = priority_order(requests, lottery, seed=7)
    assert priority_order(list(reversed(requests)), lottery, seed=7) == first
    assert priority_order(requests, lottery, seed=8) != first
    by_lottery = Regulation(pre_registration_order=PreRegistrationOrder.LOTTERY)
    assert priority_order(requests, by_lottery, seed=7) == first


def test_arrival_order_breaks_ties_by_lottery() -> None:
    early = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    late = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    requests = [
        DayRequest("late", arrived_at=late),
        DayRequest("a", arrived_at=early),
        DayRequest("b", arrived_at=early),
    ]
    arrival = Regulation(method=DailyPlaceMethod.ARRIVAL_ORDER)
    orders = {priority_order(requests, arrival, seed) for seed in range(30)}
    assert orders == {("a", "b", "late"), ("b", "a", "late")}


def test_day_requests_count_holders_unless_absent_and_applicants_who_did_not_withdraw() -> None:
    day = date(2026, 12, 1)
    traders = {t: trader(id=t) for t in ("holder", "away", "applicant", "withdrawn", "expired")}
    traders["expired"] = trader(id="expired", insurance_valid_until=date(2026, 1, 1))
    subscriptions = [subscription(trader_id="holder"), subscription(trader_id="away", stalls=("5",))]
    applications = [
        Application("applicant", day, max_stalls=2, preferred_stalls=("1",)),
        Application("withdrawn", day, withdrawn_at=datetime(2026, 11, 30, tzinfo=UTC)),
        Application("expired", day),
        Application("applicant", date(2026, 12, 4)),
    ]
    absences = [AbsencePeriod("away", date(2026, 11, 1), date(2026, 12, 31))]
    requests = {
        r.trader_id: r
        for r in requests_for_day(
            day, traders, subscriptions, applications, absences=absences, priority_groups={"applicant": 2}
        )
    }
    assert set(requests) == {"holder", "applicant", "expired"}
    assert (requests["holder"].own_stalls, requests["holder"].priority_group) == (("4",), 1)
    assert (requests["applicant"].max_stalls, requests["applicant"].priority_group) == (2, 2)
    assert requests["expired"].ineligible_reason == "no valid proof of liability insurance"
