"""Every route of every mounted service, walked with every kind of caller, against the declared matrix.

`matrix.yaml` declares, per service and `METHOD /path`, who may call the route:

- `public`: anyone, also without a token;
- `any`: every authenticated caller, whatever the role (the route scopes to the caller's own data);
- `login`: a page of the console: without a session it sends the browser to the login page;
- a list of roles: those roles pass the role check; every other role gets 403.

A second walk reads real Geel resources (ids harvested from Geel's own lists) as Hasselt callers with the same
role: each must answer 403 or 404.

Every route that is not public refuses with 401 a missing token and tokens that are expired, signed by
another key, for another audience, or without a tenant. No call may answer 5xx. A route without a row fails
the walk, and so does a row whose route no longer exists. Ownership of single resources (my application, my
route) is proven by each service's own tests with two users of the same municipality.

`CITYBLOCKS_MATRIX_DRAFT=1` prints draft rows, observed from the code, for undeclared routes: review them.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cityblocks.embedded import build_platform
from servicekit.auth import Role
from servicekit.devidp import DevIdentityProvider, demo_user
from servicekit.settings import ServiceSettings

MATRIX = Path(__file__).with_name("matrix.yaml")
METHODS = ("get", "post", "put", "patch", "delete")
# What servicekit gives every service for operations; not part of the service's API.
INFRASTRUCTURE = {"/health", "/ready", "/metrics"}
DENIED = {401, 403}


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    template: str
    parameters: tuple[Mapping[str, Any], ...]

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.template}"

    def url(self) -> str:
        """The route with a value of the right type in every parameter, naming nothing that exists."""
        path = self.template
        query: dict[str, str] = {}
        for parameter in self.parameters:
            value = sample(parameter.get("schema", {}))
            if parameter.get("in") == "path":
                path = path.replace("{" + parameter["name"] + "}", value)
            elif parameter.get("in") == "query" and parameter.get("required"):
                query[parameter["name"]] = value
        return str(httpx.URL(f"/{self.service}{path}", params=query))


def sample(schema: Mapping[str, Any]) -> str:
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        schema = next((option for option in options if option.get("type") != "null"), options[0])
    kind, form = schema.get("type"), schema.get("format")
    if "enum" in schema:
        return str(schema["enum"][0])
    if form == "uuid":
        return str(uuid.UUID(int=0x0BAD))
    if form == "date":
        return "2026-12-01"
    if form == "date-time":
        return "2026-12-01T08:00:00Z"
    if kind in ("integer", "number"):
        return "987654"
    return "unknown-thing"


def service_routes(service: str, openapi: Mapping[str, Any]) -> Iterator[Route]:
    for template, operations in openapi["paths"].items():
        if template in INFRASTRUCTURE:
            continue
        shared = tuple(operations.get("parameters", ()))
        for method in METHODS:
            if method in operations:
                yield Route(
                    service, method, template, shared + tuple(operations[method].get("parameters", ()))
                )


def declared_matrix() -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load(MATRIX.read_text()) or {}
    assert isinstance(loaded, dict)
    return {service: dict(rows or {}) for service, rows in loaded.items()}


def allowed_roles(declared: Any) -> frozenset[str]:
    if declared in ("public", "any", "login"):
        return frozenset(Role)
    if isinstance(declared, list) and set(declared) <= set(Role):
        return frozenset(declared)
    raise ValueError(f"not a matrix entry: {declared!r} (public, any, login, or a list of roles)")


class Callers:
    """Tokens for every role in Hasselt and the broken tokens every protected route must refuse."""

    def __init__(self, data_dir: Path) -> None:
        identity = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=data_dir))
        stranger = DevIdentityProvider.from_settings(
            ServiceSettings(service_name="auth", data_dir=data_dir / "stranger")
        )
        self.roles = {role.value: identity.issue(demo_user(f"hasselt.{role.value}")) for role in Role}
        admin = demo_user("hasselt.city_admin")
        self.broken = {
            "expired": identity.issue(admin, ttl_s=-120),
            "another key": stranger.issue(admin),
            "another audience": identity.issue(admin, aud="someone-else"),
            "no tenant": identity.issue(admin, tenant=None),
        }


@pytest.fixture
async def platform(tmp_path: Path) -> Any:
    app = build_platform(tmp_path)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield app, client


async def call(client: httpx.AsyncClient, route: Route, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] | None = {} if route.method in ("post", "put", "patch") else None
    response = await client.request(route.method.upper(), route.url(), headers=headers, json=body)
    return response.status_code


async def observe(client: httpx.AsyncClient, route: Route, callers: Callers) -> Any:
    """What the code does today, as a matrix entry (for drafting rows only)."""
    if await call(client, route, None) not in DENIED | {303, 307}:
        return "public"
    if await call(client, route, None) in (303, 307):
        return "login"
    allowed = [
        role for role, token in callers.roles.items() if await call(client, route, token) not in DENIED
    ]
    return "any" if set(allowed) == set(Role) else allowed


async def check(
    client: httpx.AsyncClient, route: Route, entry: Any, callers: Callers
) -> tuple[int, list[str]]:
    """Walk one row: returns the cells walked and what differed from the declaration."""
    where = f"{route.service} {route.key}"
    anonymous = await call(client, route, None)
    if entry == "public":
        return 1, [
            f"{where}: public, anonymous got {anonymous}"
        ] if anonymous in DENIED or anonymous >= 500 else []
    problems: list[str] = []
    refused = {303, 307} if entry == "login" else {401}
    if anonymous not in refused:
        problems.append(f"{where}: anonymous got {anonymous}")
    for name, token in callers.broken.items():
        status = await call(client, route, token)
        if status not in refused:
            problems.append(f"{where}: {name} token got {status}")
    allowed = allowed_roles(entry)
    for role, token in callers.roles.items():
        status = await call(client, route, token)
        if status >= 500:
            problems.append(f"{where}: {role} got {status}")
        elif role in allowed and status in DENIED:
            problems.append(f"{where}: {role} is declared allowed but got {status}")
        elif role not in allowed and status != 403:
            problems.append(f"{where}: {role} is not declared but got {status}")
    return 1 + len(callers.broken) + len(callers.roles), problems


async def test_every_route_answers_every_caller_as_the_matrix_declares(platform: Any, tmp_path: Path) -> None:
    app, client = platform
    callers = Callers(tmp_path)
    declared = declared_matrix()
    problems: list[str] = []
    drafts: dict[str, dict[str, Any]] = {}
    walked: set[tuple[str, str]] = set()
    cells = 0
    for mounted in app.state.services:
        for route in service_routes(mounted.name, mounted.app.openapi()):
            walked.add((route.service, route.key))
            rows = declared.get(route.service, {})
            if route.key in rows:
                count, found = await check(client, route, rows[route.key], callers)
                cells, problems = cells + count, problems + found
            else:
                problems.append(f"{route.service} {route.key}: no row in matrix.yaml")
                drafts.setdefault(route.service, {})[route.key] = await observe(client, route, callers)
    stale = [
        (service, key) for service, rows in declared.items() for key in rows if (service, key) not in walked
    ]
    problems.extend(f"{service} {key}: row for a route that does not exist" for service, key in stale)
    if drafts and os.environ.get("CITYBLOCKS_MATRIX_DRAFT"):
        print(yaml.safe_dump(drafts, sort_keys=False, width=200))
    print(f"authorisation matrix: {len(walked)} routes, {cells} cells walked")
    assert not problems, "\n".join(problems)
    assert cells > len(walked)


# The caller's own data under a shared catalogue id (a regional coin's history in my wallet): scoped by owner,
# proven by the services' own tests, not a municipality's resource.
OWN_DATA = ("/v1/me/", "/v1/wallet/")
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def segment_key(segment: str) -> str:
    return segment.replace("-", "_")


def harvest(node: Any, collection: str, found: dict[str, set[str]]) -> None:
    """Ids in a JSON answer: `id` under the collection's name, `<thing>_id` under its own."""
    if isinstance(node, list):
        for item in node:
            harvest(item, collection, found)
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and UUID_TEXT.match(value):
                found.setdefault(collection if key == "id" else key, set()).add(value)
            else:
                harvest(value, collection, found)


def candidates(parameter: str, found: dict[str, set[str]]) -> list[str]:
    """Ids that may name `market_day_id`: harvested as `market_day_id`, or as the `id` of `market_days`."""
    thing = parameter.removesuffix("_id")
    return sorted(found.get(parameter, set()) | found.get(f"{thing}s", set()))[:3]


async def geel_ids(
    client: httpx.AsyncClient, app: Any, declared: dict[str, dict[str, Any]], tokens: Any
) -> Any:
    found: dict[str, dict[str, set[str]]] = {}
    for mounted in app.state.services:
        ids = found.setdefault(mounted.name, {})
        for route in service_routes(mounted.name, mounted.app.openapi()):
            if route.method != "get" or "{" in route.template:
                continue
            entry = declared.get(route.service, {}).get(route.key, "public")
            for role in ["citizen"] if entry in ("public", "any", "login") else entry:
                response = await client.get(route.url(), headers={"Authorization": f"Bearer {tokens[role]}"})
                if response.status_code == 200 and "json" in response.headers.get("content-type", ""):
                    harvest(response.json(), segment_key(route.template.rstrip("/").rsplit("/", 1)[-1]), ids)
    return found


async def test_no_municipality_reads_another_municipalitys_resources(platform: Any, tmp_path: Path) -> None:
    """Real Geel ids from Geel's own lists, read by Geel (200) and by Hasselt with the same role (404)."""
    app, client = platform
    identity = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=tmp_path))
    geel = {role.value: identity.issue(demo_user(f"geel.{role.value}")) for role in Role}
    hasselt = {role.value: identity.issue(demo_user(f"hasselt.{role.value}")) for role in Role}
    declared = declared_matrix()
    found = await geel_ids(client, app, declared, geel)
    problems: list[str] = []
    checked = 0
    for mounted in app.state.services:
        for route in service_routes(mounted.name, mounted.app.openapi()):
            entry = declared.get(route.service, {}).get(route.key)
            params = [p for p in route.parameters if p.get("in") == "path"]
            if route.method != "get" or entry in (None, "public", "login") or len(params) != 1:
                continue
            if route.template.startswith(OWN_DATA):
                continue
            name = params[0]["name"]
            for value in candidates(name, found[mounted.name]):
                path = f"/{route.service}" + route.template.replace("{" + name + "}", value)
                for role in sorted(allowed_roles(entry)):
                    own = await client.get(path, headers={"Authorization": f"Bearer {geel[role]}"})
                    if own.status_code != 200:
                        continue  # not this role's (or not this kind of) resource
                    other = await client.get(path, headers={"Authorization": f"Bearer {hasselt[role]}"})
                    checked += 1
                    if other.status_code not in (403, 404):
                        problems.append(f"{route.service} {route.key} as hasselt.{role}: {other.status_code}")
                    break
    print(f"tenant isolation: {checked} Geel resources read by Hasselt callers")
    assert not problems, "\n".join(problems)
    assert checked >= 10
