"""Distance matrices: haversine with detour and speeds, the OSRM table client, the cache."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from logistics.domain import GeoPoint, SpeedProfile
from logistics.routing import (
    UNREACHABLE,
    MatrixProvider,
    OsrmClient,
    RoutingUnavailable,
    haversine_m,
    haversine_matrix,
)

HASSELT = GeoPoint(50.931, 5.338)
GEEL = GeoPoint(51.162, 4.990)
BIKE = SpeedProfile("cargo_bike", 15.0, "cycling")
VAN = SpeedProfile("van", 30.0)


def test_haversine_distance_between_hasselt_and_geel() -> None:
    assert haversine_m(HASSELT, GEEL) == pytest.approx(35_500, rel=0.02)


def test_matrix_applies_detour_and_each_profiles_speed() -> None:
    bike = haversine_matrix([HASSELT, GEEL], BIKE, detour_factor=1.3)
    van = haversine_matrix([HASSELT, GEEL], VAN, detour_factor=1.3)
    assert bike.distance_m[0][1] == round(haversine_m(HASSELT, GEEL) * 1.3)
    assert bike.distance_m[0][0] == 0 and bike.distance_m[0][1] == bike.distance_m[1][0]
    assert bike.duration_s[0][1] == pytest.approx(2 * van.duration_s[0][1], abs=2)


def osrm_transport(body: Mapping[str, object], status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.startswith("/table/v1/")
        assert request.url.params["annotations"] == "duration,distance"
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


async def test_osrm_table_is_read_and_unroutable_pairs_become_unreachable() -> None:
    body = {"code": "Ok", "durations": [[0, 61.2], [None, 0]], "distances": [[0, 800.4], [None, 0]]}
    async with httpx.AsyncClient(transport=osrm_transport(body)) as client:
        matrix = await OsrmClient("http://osrm", client=client).table([HASSELT, GEEL], VAN)
    assert matrix.duration_s == [[0, 62], [UNREACHABLE, 0]]
    assert matrix.distance_m == [[0, 800], [UNREACHABLE, 0]]


async def test_osrm_errors_are_reported_and_the_provider_can_fall_back() -> None:
    async with httpx.AsyncClient(transport=osrm_transport({"code": "NoTable"}, 400)) as client:
        osrm = OsrmClient("http://osrm", client=client)
        with pytest.raises(RoutingUnavailable):
            await osrm.table([HASSELT, GEEL], VAN)
        strict = MatrixProvider(osrm, fall_back_to_haversine=False)
        with pytest.raises(RoutingUnavailable):
            await strict.matrix([HASSELT, GEEL], VAN)
        matrix = await MatrixProvider(osrm).matrix([HASSELT, GEEL], VAN)
    assert matrix.distance_m[0][1] == round(haversine_m(HASSELT, GEEL) * 1.3)


async def test_matrices_are_cached_per_points_and_profile() -> None:
    calls = 0
    body = {"code": "Ok", "durations": [[0, 1], [1, 0]], "distances": [[0, 1], [1, 0]]}

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = MatrixProvider(OsrmClient("http://osrm", client=client))
        first = await provider.matrices([HASSELT, GEEL], [VAN, BIKE])
        again = await provider.matrices([HASSELT, GEEL], [VAN, BIKE])
    assert calls == 2
    assert first == again
