"""City admins set the district boundaries their statistics count in; nobody else can."""

from __future__ import annotations

from opendata import testing as events
from opendata.demo import demo_districts
from opendata.testing import OpenData

SQUARE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "Heel Hasselt"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[5.2, 50.8], [5.5, 50.8], [5.5, 51.0], [5.2, 51.0], [5.2, 50.8]]],
            },
        }
    ],
}


async def test_a_city_admin_replaces_the_districts(opendata: OpenData) -> None:
    admin = opendata.headers("hasselt.city_admin")
    before = await opendata.json("/v1/admin/districts", headers=admin)
    assert [f["properties"]["name"] for f in before["features"]] == [
        f["properties"]["name"] for f in demo_districts()["71022"]["features"]
    ]
    response = await opendata.client.put("/v1/admin/districts", json=SQUARE, headers=admin)
    assert (
        response.status_code == 200 and response.json()["features"][0]["properties"]["name"] == "Heel Hasselt"
    )

    await opendata.publish(*[events.trip(f"c{n}") for n in range(10)])
    rows = (await opendata.json("/v1/public/71022/datasets/mobility-credit-use.jsonld"))["@graph"]
    assert [row["district"] for row in rows] == ["Heel Hasselt"]

    geel = await opendata.json("/v1/admin/districts", headers=opendata.headers("geel.city_admin"))
    assert geel["features"][0]["properties"]["name"] == "Geel-Centrum"  # another municipality's stay


async def test_bad_boundaries_and_other_roles_are_refused(opendata: OpenData) -> None:
    admin = opendata.headers("hasselt.city_admin")
    bad = await opendata.client.put("/v1/admin/districts", json={"type": "Point"}, headers=admin)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    citizen = await opendata.client.put(
        "/v1/admin/districts", json=SQUARE, headers=opendata.headers("hasselt.citizen")
    )
    assert citizen.status_code == 403
    assert (await opendata.client.get("/v1/admin/districts")).status_code == 401
