"""Pure parts of the pages: messages, stall ranking, plans, charts, QR codes, punctuality of stops."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from console.charts import bar_chart
from console.i18n import MESSAGES, translator
from console.kpi_pages import stop_class
from console.logistics_pages import route_geojson
from console.market_pages import allocation_marks, ranked
from console.plans import StallMark, plan_svg
from console.qr import qr_svg

SOURCES = Path(str(resources.files("console")))
# Literal keys only: `t("role_" ~ role)` builds its key at run time.
KEY = re.compile(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*[,)]""")


def test_every_message_the_pages_use_exists_in_dutch_and_english() -> None:
    used = {
        key
        for path in [*SOURCES.glob("*.py"), *SOURCES.glob("templates/*.html")]
        if path.name != "i18n.py"
        for key in KEY.findall(path.read_text(encoding="utf-8"))
    }

    missing = sorted(key for key in used if key not in MESSAGES)
    untranslated = sorted(key for key, texts in MESSAGES.items() if set(texts) != {"nl", "en"})
    assert not missing, missing
    assert not untranslated, untranslated


def test_the_translator_fills_placeholders_and_shows_unknown_keys_as_they_are() -> None:
    assert translator("en")("traders_found", count=3) == "3 traders found."
    assert translator("nl")("traders_found", count=3) == "3 kramers gevonden."
    assert translator("fr")("login") == "Aanmelden"
    assert translator("en")("no_such_key") == "no_such_key"


def test_stalls_picked_on_the_plan_come_first_in_the_order_they_were_picked() -> None:
    assert ranked(["A1", "A2", "B7"], "B7,A1") == ["B7", "A1", "A2"]
    assert ranked(["A1"], "X9,A1,A1") == ["A1"]


PLAN = {
    "rows": [
        {
            "name": "A",
            "stalls": [
                {"number": "A1", "length_m": "3", "lat": 50.93, "lon": 5.3378},
                {"number": "A2", "length_m": "3", "lat": 50.93, "lon": 5.33784},
            ],
        }
    ]
}


def test_the_plan_draws_every_stall_with_its_state_written_on_it() -> None:
    svg = plan_svg(PLAN, {"A2": StallMark("own", "you")}, title="Plan <A>", interactive=True)

    assert svg.count('class="stall free" data-stall="A1" data-pick="1"') == 1
    assert 'class="stall own" data-stall="A2"' in svg
    assert ">you</text>" in svg
    assert 'aria-label="Plan &lt;A&gt;"' in svg


def test_an_allocation_marks_each_given_stall_with_the_traders_initials() -> None:
    allocation = {"assignments": [{"trader_name": "Els Peeters", "stalls": ["A1", "A2"]}]}

    marks = allocation_marks(allocation)

    assert marks["A1"] == StallMark("taken", "EP", "Els Peeters")
    assert set(marks) == {"A1", "A2"}


def test_a_route_becomes_a_line_through_its_stops_and_numbered_points() -> None:
    route = {
        "id": "r1",
        "vehicle_code": "bike-1",
        "status": "dispatched",
        "start": {"lat": 50.93, "lon": 5.33},
        "stops": [
            {
                "seq": 1,
                "status": "done",
                "service_start": "2026-11-27T08:00:00+00:00",
                "location": {"lat": 50.94, "lon": 5.34},
            },
        ],
    }

    features = route_geojson(route)["features"]

    assert features[0]["geometry"]["coordinates"] == [[5.33, 50.93], [5.34, 50.94]]
    assert features[1]["properties"]["seq"] == 1


def test_a_stop_is_on_time_within_fifteen_minutes_of_its_planned_start() -> None:
    planned = "2026-11-27T08:00:00+00:00"

    assert (
        stop_class({"status": "done", "service_start": planned, "outcome_at": "2026-11-27T08:14:00+00:00"})
        == "on_time"
    )
    assert (
        stop_class({"status": "done", "service_start": planned, "outcome_at": "2026-11-27T08:16:00+00:00"})
        == "late"
    )
    assert stop_class({"status": "failed", "service_start": planned, "outcome_at": None}) == "failed"
    assert stop_class({"status": "planned", "service_start": planned, "outcome_at": None}) == "open"


def test_bar_charts_write_each_value_next_to_its_bar() -> None:
    svg = bar_chart([("bus", 12.5), ("train", 3.0)], title="Per mode", unit=" €")

    assert "12.5 €" in svg
    assert "3 €" in svg
    assert 'role="img" aria-label="Per mode"' in svg
    assert bar_chart([], title="empty") == ""


def test_qr_codes_are_inline_svg_images_with_a_name() -> None:
    svg = qr_svg("payload-123", title="Pay QR")

    assert svg.startswith('<svg role="img" aria-label="Pay QR"')
    assert "<path" in svg
