"""Scheme rules as scenarios: pro-rating, the split of a fare, advantages by place and time, caps, checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from mobility_credit import domain
from mobility_credit.domain import (
    Advantage,
    Area,
    Cap,
    CapPeriod,
    Mode,
    ModeRule,
    Scheme,
    SchemeKind,
    TripRequest,
)

STATION = Area(lat=50.9296, lon=5.3277, radius_m=400)


def budget(**changes: object) -> Scheme:
    values: dict[str, object] = {
        "name": "Mobiliteitsbudget",
        "kind": SchemeKind.PERIODIC,
        "amount_cents": 30_000,
        "valid_from": date(2026, 1, 1),
        "rules": (
            ModeRule(Mode.BUS),
            ModeRule(Mode.SHARED_BIKE, percent=50),
            ModeRule(Mode.TAXI, percent=50, max_per_trip_cents=1_500),
            ModeRule(Mode.TRAIN, percent=50),
        ),
        "advantages": (
            Advantage("evening bikes", ModeRule(Mode.SHARED_BIKE, 100, 200), start=time(16), end=time(18)),
            Advantage("station", ModeRule(Mode.TRAIN, 100), area=STATION, place_names=frozenset({"Hasselt"})),
        ),
    }
    values.update(changes)
    return Scheme(**values)  # type: ignore[arg-type]


def local(hour: int, minute: int = 0, day: int = 26) -> datetime:
    """A moment in Hasselt (CET in November: UTC+1)."""
    return datetime(2026, 11, day, hour - 1, minute, tzinfo=UTC)


def ride(mode: Mode, fare: int, at: datetime | None = None, **place: object) -> TripRequest:
    return TripRequest("provider-1", mode, fare, at or local(10), **place)  # type: ignore[arg-type]


def test_a_periodic_budget_is_pro_rated_by_the_months_left_in_its_period() -> None:
    terms = domain.grant_terms(budget(), date(2026, 4, 10))

    assert terms.amount_cents == 30_000 * 9 // 12
    assert terms.period_start == date(2026, 1, 1)
    assert terms.expires_on == date(2026, 12, 31)


def test_a_monthly_budget_starts_a_new_period_every_month() -> None:
    terms = domain.grant_terms(budget(period_months=1, amount_cents=15_000), date(2026, 11, 26))

    assert terms.amount_cents == 15_000
    assert (terms.period_start, terms.expires_on) == (date(2026, 11, 1), date(2026, 11, 30))


def test_a_one_off_premium_is_paid_in_full_and_expires_after_its_months() -> None:
    premium = budget(kind=SchemeKind.ONE_OFF, amount_cents=50_000, expiry_months=12)

    terms = domain.grant_terms(premium, date(2026, 11, 26))

    assert terms.amount_cents == 50_000
    assert terms.expires_on == date(2027, 11, 30)


def test_a_scheme_grants_nothing_before_it_opens_or_after_it_closes() -> None:
    closing = budget(valid_until=date(2026, 6, 30))

    with pytest.raises(domain.NotEligible):
        domain.grant_terms(closing, date(2025, 12, 31))
    with pytest.raises(domain.NotEligible):
        domain.grant_terms(closing, date(2026, 7, 1))
    assert domain.grant_terms(closing, date(2026, 6, 1)).expires_on == date(2026, 6, 30)


def test_the_city_pays_the_modes_percentage_and_the_citizen_the_rest() -> None:
    split = domain.split_fare(budget(), ride(Mode.TAXI, 2_001))

    assert split.city_cents == 1_000
    assert split.citizen_cents == 1_001


def test_a_per_trip_maximum_limits_the_city_share() -> None:
    split = domain.split_fare(budget(), ride(Mode.TAXI, 5_000))

    assert (split.city_cents, split.citizen_cents) == (1_500, 3_500)


@pytest.mark.parametrize(
    ("hour", "minute", "city"),
    [(15, 59, 150), (16, 0, 200), (17, 59, 200), (18, 0, 150)],
)
def test_shared_bikes_get_at_most_two_euro_off_between_four_and_six(
    hour: int, minute: int, city: int
) -> None:
    split = domain.split_fare(budget(), ride(Mode.SHARED_BIKE, 300, local(hour, minute)))

    assert split.city_cents == city
    assert split.advantage == ("evening bikes" if city == 200 else None)


def test_an_advantage_by_place_applies_near_the_station_or_by_its_name() -> None:
    near = ride(Mode.TRAIN, 1_000, lat=50.9300, lon=5.3280)
    far = ride(Mode.TRAIN, 1_000, lat=50.9800, lon=5.4000)
    named = ride(Mode.TRAIN, 1_000, place_name="hasselt")

    assert domain.split_fare(budget(), near).city_cents == 1_000
    assert domain.split_fare(budget(), far).city_cents == 500
    assert domain.split_fare(budget(), named).city_cents == 1_000


def test_a_weekday_advantage_does_not_apply_at_the_weekend() -> None:
    weekdays = Advantage("weekday bus", ModeRule(Mode.TRAIN, 100), weekdays=frozenset(range(5)))
    scheme = budget(advantages=(weekdays,))

    thursday = domain.split_fare(scheme, ride(Mode.TRAIN, 800, local(10, day=26)))
    saturday = domain.split_fare(scheme, ride(Mode.TRAIN, 800, local(10, day=28)))

    assert (thursday.city_cents, saturday.city_cents) == (800, 400)


def test_a_cap_limits_the_city_share_to_what_is_left_in_the_period() -> None:
    cap = Cap(5_000, CapPeriod.MONTH, Mode.TAXI)
    scheme = budget(caps=(cap,))

    fresh = domain.split_fare(scheme, ride(Mode.TAXI, 2_000))
    nearly_spent = domain.split_fare(scheme, ride(Mode.TAXI, 2_000), {cap: 300})
    spent = domain.split_fare(scheme, ride(Mode.TAXI, 2_000), {cap: 0})
    bus = domain.split_fare(scheme, ride(Mode.BUS, 2_000), {cap: 0})

    assert (fresh.city_cents, nearly_spent.city_cents, spent.city_cents) == (1_000, 300, 0)
    assert bus.city_cents == 2_000  # a taxi cap leaves other modes alone


def test_cap_windows_follow_local_time_at_their_edges() -> None:
    new_year_in_hasselt = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)

    assert domain.period_key(CapPeriod.DAY, new_year_in_hasselt) == "2027-01-01"
    assert domain.period_key(CapPeriod.MONTH, new_year_in_hasselt) == "2027-01"
    assert domain.period_key(CapPeriod.YEAR, new_year_in_hasselt) == "2027"
    assert domain.period_key(CapPeriod.WEEK, new_year_in_hasselt) == "2026-W53"


def test_a_mode_or_provider_outside_the_scheme_is_not_paid() -> None:
    only_one = budget(providers=frozenset({"provider-2"}))

    with pytest.raises(domain.NotEligible):
        domain.split_fare(budget(), ride(Mode.CAR_SHARING, 1_000))
    with pytest.raises(domain.NotEligible):
        domain.split_fare(only_one, ride(Mode.BUS, 1_000))


@pytest.mark.parametrize("fare", [0, -1, True, 2.5])
def test_fares_are_positive_integer_cents(fare: object) -> None:
    with pytest.raises(domain.InvalidAmount):
        ride(Mode.BUS, fare)  # type: ignore[arg-type]


def test_a_refund_returns_at_most_what_is_left_of_the_city_share() -> None:
    assert domain.refund_amount(300, 100, None) == 200
    assert domain.refund_amount(300, 0, 50) == 50
    with pytest.raises(domain.RefundExceedsTrip):
        domain.refund_amount(300, 100, 201)


def test_invalid_schemes_are_refused() -> None:
    with pytest.raises(domain.InvalidScheme):
        budget(rules=())
    with pytest.raises(domain.InvalidScheme):
        budget(rules=(ModeRule(Mode.BUS), ModeRule(Mode.BUS, 50)))
    with pytest.raises(domain.InvalidScheme):
        budget(rules=(ModeRule(Mode.BUS, percent=101),))
    with pytest.raises(domain.InvalidScheme):
        budget(valid_until=date(2025, 1, 1))


def test_kbo_numbers_and_ibans_carry_valid_check_digits() -> None:
    assert domain.valid_kbo("0242.172.079")
    assert not domain.valid_kbo("0242.172.078")
    assert domain.valid_iban("BE41 9100 0000 1110")
    assert not domain.valid_iban("BE41910000001111")
    assert not domain.valid_iban("BE4191000000111")
