"""The console's login, navigation by role, language choice and the city admins' ops console."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cityblocks.embedded import build_platform
from console import feed
from console.ops import parse_lag
from console.web import money

LogIn = Callable[[str], Awaitable[httpx.Response]]
Bearer = Callable[[str], Awaitable[dict[str, str]]]


async def test_the_embedded_platform_serves_the_console_and_leads_there_from_its_home(tmp_path: Path) -> None:
    platform = build_platform(tmp_path)
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            home = await client.get("/")
            console = await client.get("/console/")
            services = await client.get("/services")

    assert home.status_code == 307
    assert home.headers["location"] == "console/"
    assert console.status_code == 200
    assert '<html lang="nl">' in console.text
    assert "console" in [service["name"] for service in services.json()]


async def test_login_keeps_the_token_in_an_http_only_cookie_and_returns_to_the_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/console/login", data={"username": "hasselt.city_admin", "next": "/console/ops"}
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/console/ops"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Path=/console" in cookie


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/console/\\evil.example"])
async def test_login_refuses_to_send_people_to_another_site(client: httpx.AsyncClient, target: str) -> None:
    response = await client.post("/console/login", data={"username": "hasselt.city_admin", "next": target})

    assert response.headers["location"] == "/console/"


async def test_a_page_for_logged_in_users_sends_visitors_to_the_login_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/ops")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fops"


async def test_an_unknown_demo_user_gets_the_login_page_again_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/console/login", data={"username": "nobody"})

    assert response.status_code == 400
    assert "unknown demo user" in response.text


async def test_navigation_shows_each_role_its_own_pages(client: httpx.AsyncClient, log_in: LogIn) -> None:
    await log_in("geel.trader")
    trader = await client.get("/console/")
    await log_in("geel.city_admin")
    admin = await client.get("/console/")

    assert "Mijn markten" in trader.text
    assert "Operaties" not in trader.text
    assert "Operaties" in admin.text
    assert "Mijn markten" not in admin.text


async def test_a_trader_may_not_open_the_ops_console(client: httpx.AsyncClient, log_in: LogIn) -> None:
    await log_in("hasselt.trader")

    response = await client.get("/console/ops")

    assert response.status_code == 403


async def test_pages_are_dutch_by_default_and_english_on_request(client: httpx.AsyncClient) -> None:
    dutch = await client.get("/console/login")
    switch = await client.get("/console/language/en", params={"next": "/console/login"})
    english = await client.get("/console/login")

    assert "Aanmelden bij CityBlocks" in dutch.text
    assert switch.headers["location"] == "/console/login"
    assert '<html lang="en">' in english.text
    assert "Log in to CityBlocks" in english.text


async def test_logout_ends_the_session(client: httpx.AsyncClient, log_in: LogIn) -> None:
    await log_in("hasselt.city_admin")

    await client.post("/console/logout")
    response = await client.get("/console/ops")

    assert response.status_code == 303


async def test_the_ops_console_shows_the_health_of_every_mounted_service_and_consumer_lag(
    client: httpx.AsyncClient, log_in: LogIn
) -> None:
    await log_in("hasselt.city_admin")

    page = await client.get("/console/ops")

    assert page.status_code == 200
    for name in ("console", "producer", "fragile"):
        assert f'data-service="{name}"' in page.text
    assert page.text.count("✔ gereed") == 3
    assert '<th scope="row">fragile</th>' in page.text


async def test_events_of_the_municipality_reach_the_feed_and_other_municipalities_do_not_see_them(
    client: httpx.AsyncClient, log_in: LogIn, bearer: Bearer
) -> None:
    await client.post("/producer/v1/records/market-7/1", headers=await bearer("hasselt.city_admin"))

    await log_in("hasselt.city_admin")
    hasselt = probes(await eventually(client, "/console/feed/recent", lambda found: len(probes(found)) == 1))
    await log_in("geel.city_admin")
    geel = (await client.get("/console/feed/recent")).json()

    assert hasselt[0]["subject"] == "market-7"
    assert hasselt[0]["tenant"] == "71022"
    assert geel == []


async def test_staff_watch_only_their_own_services_events_and_drivers_no_feed_at_all(
    client: httpx.AsyncClient, log_in: LogIn, bearer: Bearer
) -> None:
    await probe_in_the_feed(client, log_in, bearer, "trip-1")

    await log_in("hasselt.operator")
    operator = await client.get("/console/feed/recent")
    other_service = await client.get("/console/feed/recent?service=producer")
    await log_in("hasselt.driver")
    driver = await client.get("/console/feed/recent")
    stream = await client.get("/console/feed/stream")

    assert operator.status_code == 200 and probes(operator.json()) == []
    assert other_service.status_code == 403
    assert driver.status_code == 403
    assert stream.status_code == 403


async def probe_in_the_feed(client: httpx.AsyncClient, log_in: LogIn, bearer: Bearer, stream: str) -> None:
    """A probe event of Hasselt, once a Hasselt city admin (logged in afterwards) sees it in the feed."""
    await client.post(f"/producer/v1/records/{stream}/1", headers=await bearer("hasselt.city_admin"))
    await log_in("hasselt.city_admin")
    await eventually(client, "/console/feed/recent", lambda found: len(probes(found)) == 1)


def probes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Admins' changing requests are recorded as audit events too; these tests follow the probe's.
    return [event for event in events if event["name"] == "ProbeRecorded"]


async def test_the_feed_page_lists_recent_events_and_follows_the_stream(
    client: httpx.AsyncClient, log_in: LogIn, bearer: Bearer
) -> None:
    await probe_in_the_feed(client, log_in, bearer, "stall-3")

    page = await client.get("/console/ops/feed")

    assert "ProbeRecorded" in page.text
    assert 'data-feed="/console/feed/stream?service=&amp;after=' in page.text


async def test_the_stream_sends_each_new_event_once_as_a_server_sent_event(
    client: httpx.AsyncClient, platform: FastAPI, bearer: Bearer
) -> None:
    headers = await bearer("geel.city_admin")
    await client.post("/producer/v1/records/s/1", headers=headers)
    await client.post("/producer/v1/records/s/2", headers=headers)
    console = next(service.app for service in platform.state.services if service.name == "console")
    sessionmaker = console.state.context.sessionmaker

    chunks: list[str] = []

    def sent() -> list[dict[str, Any]]:
        return [json.loads(chunk.split("data: ", 1)[1]) for chunk in chunks if chunk.startswith("id:")]

    async def disconnected() -> bool:
        return len(probes(sent())) >= 2

    async with asyncio.timeout(5):
        async for chunk in feed.stream(
            sessionmaker, "13008", after=0, services=None, disconnected=disconnected
        ):
            chunks.append(chunk)

    assert [event["data"]["seq"] for event in probes(sent())] == [1, 2]
    assert len({event["id"] for event in sent()}) == len(sent())
    assert chunks[0] == "retry: 1000\n\n"


async def test_a_dead_letter_is_listed_and_replayed_once_its_cause_is_fixed(
    client: httpx.AsyncClient, log_in: LogIn, bearer: Bearer, fragile_state: dict[str, bool]
) -> None:
    await client.post("/producer/v1/records/poison/1", headers=await bearer("hasselt.city_admin"))
    admin = await bearer("hasselt.city_admin")
    letters = await eventually(
        client, "/fragile/v1/dead-letters", lambda found: len(found) == 1, headers=admin
    )
    await log_in("hasselt.city_admin")

    listed = await client.get("/console/ops/dead-letters")
    fragile_state["broken"] = False
    replayed = await client.post(f"/console/ops/dead-letters/fragile/{letters[0]['id']}/replay")
    after = await client.get(replayed.headers["location"])

    assert "cannot handle poison" in listed.text
    assert f"/console/ops/dead-letters/fragile/{letters[0]['id']}/replay" in listed.text
    assert "opnieuw verwerkt" in after.text
    assert f"/ops/dead-letters/fragile/{letters[0]['id']}/replay" not in after.text


async def test_static_files_stay_inside_their_folders(client: httpx.AsyncClient) -> None:
    css = await client.get("/console/static/console.css")
    leaflet = await client.get("/console/static/leaflet/leaflet.js")
    escape = await client.get("/console/static/..%2Fapp.py")

    assert css.status_code == 200
    assert leaflet.status_code == 200
    assert escape.status_code == 404


def test_lag_figures_are_read_from_the_prometheus_page() -> None:
    page = (
        "x 1\n"
        'cityblocks_consumer_group_lag{group="market"} 3.0\n'
        'cityblocks_consumer_group_lag{group="console"} 0.0\n'
    )

    assert parse_lag(page) == {"market": 3, "console": 0}


@pytest.mark.parametrize(
    ("cents", "shown"), [(1250, "€ 12,50"), (-5, "-€ 0,05"), (123456789, "€ 1.234.567,89")]
)
def test_money_is_shown_in_belgian_notation(cents: int, shown: str) -> None:
    assert money(cents) == shown


async def eventually(
    client: httpx.AsyncClient, path: str, done: Callable[[Any], bool], headers: dict[str, str] | None = None
) -> Any:
    async with asyncio.timeout(5):
        while True:
            found = (await client.get(path, headers=headers)).json()
            if done(found):
                return found
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("hasselt.trader", "/console/trader"),
        ("hasselt.operator", "/console/logistics"),
        ("geel.citizen", "/console/coins"),
        ("geel.merchant", "/console/till"),
        ("hasselt.driver", "/console/driver"),
    ],
)
async def test_a_page_whose_service_is_not_there_says_so_instead_of_failing(
    client: httpx.AsyncClient, log_in: LogIn, username: str, path: str
) -> None:
    await log_in(username)

    page = await client.get(path)

    assert page.status_code in (404, 502)
    assert "Niet beschikbaar" in page.text
    assert 'role="alert"' in page.text


async def test_key_figures_show_which_service_failed_and_keep_the_rest(
    client: httpx.AsyncClient, log_in: LogIn
) -> None:
    await log_in("hasselt.city_admin")

    page = await client.get("/console/kpis")

    assert page.status_code == 200
    assert page.text.count("Niet beschikbaar: ") == 4


async def test_a_stream_ends_after_a_while_so_that_the_server_can_stop_and_the_browser_reconnects(
    client: httpx.AsyncClient, platform: FastAPI
) -> None:
    console = next(service.app for service in platform.state.services if service.name == "console")

    async def connected() -> bool:
        return False

    async with asyncio.timeout(3):
        chunks = [
            chunk
            async for chunk in feed.stream(
                console.state.context.sessionmaker,
                "71022",
                after=0,
                services=None,
                disconnected=connected,
                lasting_s=0.6,
            )
        ]

    assert chunks[0].startswith("retry: ")
