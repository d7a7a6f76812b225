"""Small-group suppression as a property, districts by polygon, months in Brussels time."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendata import domain
from opendata.demo import demo_districts

trips = st.lists(
    st.builds(
        domain.Trip,
        month=st.sampled_from(["2026-10", "2026-11"]),
        mode=st.sampled_from(["bus", "train", "shared_bike"]),
        district=st.sampled_from(["Centrum", "Kermt"]),
        person=st.integers(0, 40).map(lambda n: f"p{n}"),
        city_share_cents=st.integers(0, 500),
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(trips=trips, k=st.integers(10, 15))
def test_no_published_trip_figure_is_about_fewer_than_k_citizens(trips: list[domain.Trip], k: int) -> None:
    people: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for trip in trips:
        people[(trip.month, trip.mode, trip.district)].add(trip.person)

    rows = domain.trip_statistics(trips, k)

    assert {(r["month"], r["mode"], r["district"]) for r in rows} == set(people)
    for row in rows:
        group = people[(row["month"], row["mode"], row["district"])]
        if len(group) < k:
            assert row["suppressed"] is True
            # suppressed, not rounded to zero: the figures are absent
            assert row["trips"] is None and row["citizens"] is None and row["city_share_eur"] is None
        else:
            assert row["suppressed"] is False and row["citizens"] == len(group)
            members = [
                t
                for t in trips
                if (t.month, t.mode, t.district) == (row["month"], row["mode"], row["district"])
            ]
            assert row["trips"] == len(members)
            assert row["city_share_eur"] == round(sum(t.city_share_cents for t in members) / 100, 2)


movements = st.lists(
    st.builds(
        domain.CoinMovement,
        month=st.sampled_from(["2026-10", "2026-11"]),
        kind=st.sampled_from(domain.KINDS),
        coin_code=st.sampled_from(["GEEL", "KEMPEN"]),
        campaign_id=st.sampled_from(["c1", "c2"]),
        person=st.one_of(st.none(), st.integers(0, 30).map(lambda n: f"p{n}")),
        amount=st.integers(1, 50),
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(movements=movements)
def test_no_published_coin_figure_is_about_fewer_than_ten_citizens(
    movements: list[domain.CoinMovement],
) -> None:
    rows = domain.coin_statistics(movements)
    for row in rows:
        members = [
            m
            for m in movements
            if (m.month, m.kind, m.coin_code) == (row["month"], row["measure"], row["coin_code"])
            and (m.kind != "issued" or m.campaign_id == row["campaign_id"])
        ]
        citizens = {m.person for m in members if m.person is not None}
        assert members, row
        if 0 < len(citizens) < domain.MIN_GROUP_SIZE:
            assert row["suppressed"] and row["coins"] is None and row["citizens"] is None
        else:
            assert not row["suppressed"] and row["coins"] == sum(m.amount for m in members)
    assert sum(1 for r in rows if r["measure"] != "issued" and r["campaign_id"] is not None) == 0


def test_the_minimum_group_size_cannot_be_lowered() -> None:
    with pytest.raises(ValueError):
        domain.publishable(20, min_group_size=5)


def test_districts_contain_their_points_and_not_their_holes() -> None:
    hasselt = domain.check_districts(demo_districts()["71022"])
    assert domain.district_of(hasselt, 50.9305, 5.3378) == "Hasselt-Centrum"
    assert domain.district_of(hasselt, 50.9296, 5.3277) == "Hasselt buiten het centrum"  # the station
    assert domain.district_of(hasselt, 51.5, 5.0) == domain.UNKNOWN_DISTRICT
    assert domain.district_of(hasselt, None, None) == domain.UNKNOWN_DISTRICT


@pytest.mark.parametrize(
    "collection",
    [
        {"type": "Feature"},
        {"type": "FeatureCollection", "features": [{"properties": {}, "geometry": {"type": "Polygon"}}]},
        {
            "type": "FeatureCollection",
            "features": [
                {"properties": {"name": "x"}, "geometry": {"type": "Point", "coordinates": [5, 50]}}
            ],
        },
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "properties": {"name": "open"},
                    "geometry": {"type": "Polygon", "coordinates": [[[5, 50], [6, 50], [6, 51]]]},
                }
            ],
        },
    ],
)
def test_bad_district_boundaries_are_refused(collection: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(domain.InvalidDistricts):
        domain.check_districts(collection)


def test_months_are_brussels_months() -> None:
    assert domain.local_month(datetime(2026, 10, 31, 23, 30, tzinfo=UTC)) == "2026-11"
