"""Page rendering: Jinja2 templates with the message catalogue, the user's navigation and the static files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from console.clients import ServiceProblem
from console.i18n import LANGUAGES, choose_language, translator
from console.session import LANGUAGE_COOKIE, User, base_path

NO_VALUE = "\N{EN DASH}"


@dataclass(frozen=True)
class NavItem:
    key: str
    path: str
    roles: frozenset[str]


def _item(key: str, path: str, *roles: str) -> NavItem:
    return NavItem(key, path, frozenset(roles))


# Who sees which page: the console's navigation by role; each page checks the role again.
NAVIGATION: tuple[NavItem, ...] = (
    _item("nav_ops", "/ops", "city_admin"),
    _item("nav_feed", "/ops/feed", "city_admin"),
    _item("nav_dead_letters", "/ops/dead-letters", "city_admin"),
    _item("nav_kpis", "/kpis", "city_admin"),
    _item("nav_markets", "/markets", "city_admin", "market_master"),
    _item("nav_my_markets", "/trader", "trader"),
    _item("nav_invoices", "/trader/invoices", "trader"),
    _item("nav_wallet", "/wallet", "citizen"),
    _item("nav_coins", "/coins", "citizen"),
    _item("nav_campaigns", "/campaigns", "city_admin"),
    _item("nav_schemes", "/schemes", "city_admin"),
    _item("nav_till", "/till", "merchant"),
    _item("nav_trips", "/provider", "provider"),
    _item("nav_orders", "/logistics", "operator", "city_admin"),
    _item("nav_my_route", "/driver", "driver"),
)
PUBLIC_NAVIGATION: tuple[NavItem, ...] = (_item("nav_public_markets", "/public/markets"),)


def navigation(user: User | None) -> list[NavItem]:
    if user is None:
        return list(PUBLIC_NAVIGATION)
    own = [item for item in NAVIGATION if user.has_role(*item.roles)]
    return [*own, *PUBLIC_NAVIGATION]


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("console", "templates"),
        autoescape=jinja2.select_autoescape(["html", "svg"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["tojson_attr"] = lambda value: json.dumps(value)
    env.filters["when"] = when
    env.filters["clock"] = clock
    return env


def money(cents: Any, currency: str = "€") -> str:
    """Integer minor units as `€ 12,50` (Belgian notation)."""
    if not isinstance(cents, int):
        return NO_VALUE
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{currency} {whole:,}".replace(",", ".") + f",{part:02d}"


def when(value: Any) -> str:
    """An ISO timestamp shortened for tables (`2026-11-26 23:05`)."""
    if not isinstance(value, str):
        return NO_VALUE if value is None else str(value)
    return value.replace("T", " ")[:16]


def clock(value: Any) -> str:
    """An ISO timestamp as local time in Belgium (`07:45`), the time people on the street work with."""
    if not isinstance(value, str):
        return NO_VALUE
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%H:%M")
    return moment.astimezone(_local_zone()).strftime("%H:%M")


def local_today() -> date:
    """Today in Belgium: near midnight UTC the services' day has already turned."""
    return datetime.now(_local_zone()).date()


@cache
def _local_zone() -> tzinfo:
    try:
        return ZoneInfo("Europe/Brussels")
    except ZoneInfoNotFoundError:
        return UTC


def language_of(request: Request) -> str:
    return choose_language(request.cookies.get(LANGUAGE_COOKIE))


def render(
    request: Request, template: str, user: User | None, *, status: int = 200, **context: Any
) -> HTMLResponse:
    lang = language_of(request)
    base = base_path(request)
    page = (
        environment()
        .get_template(template)
        .render(
            request=request,
            t=translator(lang),
            lang=lang,
            languages=LANGUAGES,
            base=base,
            user=user,
            nav=navigation(user),
            here=request.url.path.removeprefix(base) or "/",
            **context,
        )
    )
    return HTMLResponse(page, status_code=status)


def unavailable(request: Request, user: User | None, problem: ServiceProblem) -> HTMLResponse:
    """The page could not be built because a service failed; say which and why, in the user's language."""
    t = translator(language_of(request))
    if problem.missing and problem.status != 404:
        message = t("not_available_yet")
    else:
        message = t("service_error", service=problem.service, detail=problem.detail)
    status = 404 if problem.status == 404 else 502
    return render(request, "unavailable.html", user, message=message, status=status)


def raw(html: str) -> Markup:
    """Markup built by our own code (inline SVG, QR codes) that the templates must not escape."""
    return Markup(html)  # noqa: S704


def static_file(name: str) -> Path | None:
    """A file of the console's own static folder, or None (no path may leave the folder)."""
    folder = Path(str(resources.files("console").joinpath("static")))
    return _inside(folder, name)


def leaflet_file(name: str) -> Path | None:
    """A file of Leaflet as shipped by the XStatic-Leaflet package."""
    import xstatic.pkg.leaflet as leaflet

    return _inside(Path(leaflet.BASE_DIR), name)


def _inside(folder: Path, name: str) -> Path | None:
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        return None
    return path
