"""Domain rules: named errors carrying the field, zone geometry and access rules."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from logistics.domain import (
    AccessRule,
    Area,
    GeoPoint,
    InvalidCapacity,
    InvalidField,
    InvalidPolygon,
    InvalidTimeWindow,
    OutsideServiceArea,
    PlanningRequest,
    StopKind,
    StopOutcome,
    StopStatus,
    TimeWindow,
    UnknownReference,
    VehicleKind,
    area_from_geojson,
)

SQUARE = [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 0.0]]
HOLE = [[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0], [1.0, 1.0]]


def test_window_that_ends_before_it_starts_is_refused_naming_the_field(hasselt: SimpleNamespace) -> None:
    late = hasselt.order("o1", hasselt.centre, TimeWindow(hasselt.at(12), hasselt.at(11)))
    with pytest.raises(InvalidTimeWindow) as error:
        hasselt.request(late, vehicles=(hasselt.van("v1"),)).validate()
    assert error.value.field == "orders[0].windows[0]"


def test_naive_datetimes_are_refused(hasselt: SimpleNamespace) -> None:
    naive = TimeWindow(hasselt.at(8).replace(tzinfo=None), hasselt.at(9).replace(tzinfo=None))
    with pytest.raises(InvalidTimeWindow):
        naive.check("window")


def test_vehicle_without_capacity_is_refused_naming_the_field(hasselt: SimpleNamespace) -> None:
    with pytest.raises(InvalidCapacity) as error:
        hasselt.request(vehicles=(hasselt.van("v1"), hasselt.van("v2", capacity_kg=0.0))).validate()
    assert error.value.field == "vehicles[1].capacity_kg"


def test_vehicle_from_an_unknown_hub_is_refused(hasselt: SimpleNamespace) -> None:
    with pytest.raises(UnknownReference) as error:
        hasselt.request(vehicles=(hasselt.van("v1", end_hub="elsewhere"),)).validate()
    assert error.value.field == "vehicles[0].end_hub"


def test_order_outside_every_reachable_area_is_refused(hasselt: SimpleNamespace) -> None:
    far = hasselt.order("o1", GeoPoint(51.16, 4.99))
    base = hasselt.request(far, vehicles=(hasselt.van("v1"),))
    area = Area(hasselt.pedestrian_zone().area.polygons)
    request = PlanningRequest(base.tenant, base.origin, base.hubs, base.vehicles, (), base.orders, area)
    with pytest.raises(OutsideServiceArea) as error:
        request.validate()
    assert error.value.field == "orders[0].recipient.location"


def test_point_in_polygon_respects_holes() -> None:
    area = area_from_geojson({"type": "Polygon", "coordinates": [SQUARE, HOLE]}, "zone")
    assert area.contains(GeoPoint(lat=3.0, lon=3.0))
    assert not area.contains(GeoPoint(lat=1.5, lon=1.5))
    assert not area.contains(GeoPoint(lat=5.0, lon=1.0))


def test_multipolygon_features_are_accepted() -> None:
    feature = {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[SQUARE], [HOLE]]}}
    assert len(area_from_geojson(feature, "zone").polygons) == 2


@pytest.mark.parametrize(
    ("geometry", "field"),
    [
        ({"type": "Point", "coordinates": [0, 0]}, "zone"),
        ({"type": "Polygon", "coordinates": []}, "zone.coordinates"),
        ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "zone.coordinates[0]"),
        ({"type": "Polygon", "coordinates": [[*SQUARE[:-1], [0.0, 1.0]]]}, "zone.coordinates[0]"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]},
            "zone.coordinates[0]",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}, "zone.coordinates[0]"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]}, "zone.coordinates[0][1]"),
        ({"type": "Polygon", "coordinates": [[[0, 0], ["a", 0], [1, 1], [0, 0]]]}, "zone.coordinates[0][1]"),
    ],
    ids=["not-a-polygon", "empty", "open-ring", "unclosed", "bow-tie", "no-area", "longitude", "text"],
)
def test_invalid_polygons_are_refused_naming_the_field(geometry: object, field: str) -> None:
    with pytest.raises(InvalidPolygon) as error:
        area_from_geojson(geometry, "zone")
    assert error.value.field == field


def test_zone_admits_a_kind_only_within_its_access_windows(hasselt: SimpleNamespace) -> None:
    zone = hasselt.pedestrian_zone(
        AccessRule(VehicleKind.VAN, (hasselt.window(6, 10),)), AccessRule(VehicleKind.CARGO_BIKE)
    )
    van, bike = hasselt.van("v"), hasselt.bike("b")
    assert zone.admits(van, hasselt.at(9, 50), hasselt.at(9, 55))
    assert not zone.admits(van, hasselt.at(9, 58), hasselt.at(10, 3))
    assert zone.admits(bike, hasselt.at(15), hasselt.at(15) + timedelta(minutes=5))
    assert not zone.admits(hasselt.van("e", kind=VehicleKind.ELECTRIC_VAN), hasselt.at(7), hasselt.at(8))


def test_zone_keeps_out_vehicles_above_its_weight_limit(hasselt: SimpleNamespace) -> None:
    zone = hasselt.pedestrian_zone(AccessRule(VehicleKind.VAN))
    light = type(zone)(zone.id, zone.name, zone.area, zone.rules, max_weight_kg=3000.0)
    assert light.rule_for(hasselt.van("v")) is None
    assert light.rule_for(hasselt.van("v", gross_weight_kg=2800.0)) is not None


def test_a_failed_stop_needs_a_reason(hasselt: SimpleNamespace) -> None:
    with pytest.raises(InvalidField):
        StopOutcome("o1", StopKind.DELIVERY, StopStatus.FAILED, hasselt.at(9))
