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
the walk, and so does a row whose route no longer exists.

A third walk checks ownership within one municipality: `ownership.yaml` declares, for every route and party
role the matrix lets in, whether the route is shared, scoped to the caller's own data, a command on the
caller's own things, or names an owned resource that another owner of the role is refused (403 or 404). Two
owners of every party role in Geel, each with resources of their own (conftest.py), walk every declared
cell both ways, also with one's own parent resource and the other's child (my provider, your hold). A route
and role without a declaration fails the walk.

`CITYBLOCKS_MATRIX_DRAFT=1` prints draft rows, observed from the code, for undeclared routes: review them.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import yaml

from incentives.demo import KEMPEN_COIN
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
# proven by the ownership walk, not a municipality's resource.
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


OWNERSHIP = Path(__file__).with_name("ownership.yaml")
# Two owners of a role in Geel (conftest.Owner: user, headers, owned ids by path parameter, ids()).
Pair = tuple[Any, Any]
Owners = dict[str, Pair]
REFUSED = {403, 404}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Values for path parameters that name no resource (a month), by the name `ownership.yaml` gives them.
VALUES = {"this-month": date.today().strftime("%Y-%m"), "kempen-coin": str(KEMPEN_COIN)}


@dataclass(frozen=True)
class Ownership:
    """One cell of `ownership.yaml`: how a route treats two owners of one role in one municipality."""

    kind: str  # shared | scoped | creates | 403 | 404
    path: Mapping[str, str]
    body: Any

    @classmethod
    def parse(cls, declared: Any) -> Ownership:
        if isinstance(declared, dict):
            kind = str(declared["kind"])
            return cls(kind, declared.get("path", {}), declared.get("body", {}))
        return cls(str(declared), {}, {})


def declared_ownership() -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load(OWNERSHIP.read_text()) or {}
    return {service: dict(rows or {}) for service, rows in loaded.items()}


def ownership_cell(rows: Mapping[str, Any], route: Route, role: str) -> Ownership | None:
    """`METHOD /path: kind` holds for every party role of the route; a mapping names it per role."""
    declared = rows.get(route.key)
    if isinstance(declared, dict) and "kind" not in declared:
        declared = declared.get(role)
    return None if declared is None else Ownership.parse(declared)


def ids_in(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(ids_in(item) for item in node))
    if isinstance(node, dict):
        return set().union(*(ids_in(value) for value in node.values()))
    return {node} if isinstance(node, str) and UUID_TEXT.match(node) else set()


@dataclass
class OwnershipWalk:
    client: httpx.AsyncClient
    shared: dict[str, set[str]]
    problems: list[str] = field(default_factory=list)
    exercised: set[str] = field(default_factory=set)
    calls: int = 0

    async def call(self, route: Route, cell: Ownership, caller: Any, of: Any, *, mixed: str = "") -> Any:
        """Call `route` as `caller` naming `of`'s resources (`mixed`: only that parameter names `of`'s);
        `{parameter}` in the declared body is filled in the same way. None: nothing to name."""

        def value(parameter: str) -> str | None:
            owner = of if not mixed or parameter == mixed else caller
            if parameter in owner.owned:
                return str(sorted(owner.owned[parameter])[0])
            if parameter in cell.path:
                return VALUES.get(cell.path[parameter], cell.path[parameter])
            shared = candidates(parameter, self.shared)
            return shared[0] if shared else None

        filled: dict[str, str | None] = {}
        for name in PLACEHOLDER.findall(route.template + json.dumps(cell.body)):
            filled[name] = value(name)
        if None in filled.values():
            return None
        path, body = route.template, json.dumps(cell.body)
        for name, found in filled.items():
            path, body = (
                path.replace("{" + name + "}", str(found)),
                body.replace("{" + name + "}", str(found)),
            )
        content = body if route.method in ("post", "put", "patch") else None
        headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
        self.calls += 1
        return await self.client.request(
            route.method.upper(), f"/{route.service}{path}", headers=headers, content=content
        )

    async def walk(self, route: Route, role: str, cell: Ownership, pair: Pair) -> None:
        where = f"{route.service} {route.key} as {role}"
        calls = self.calls
        await self.walk_cell(where, route, cell, pair)
        if self.calls > calls:
            self.exercised.add(where)

    async def walk_cell(self, where: str, route: Route, cell: Ownership, pair: Pair) -> None:
        if cell.kind in ("403", "404"):
            await self.named(where, route, cell, pair)
        elif cell.kind == "scoped" and route.method == "get":
            await self.scoped(where, route, cell, pair)
        elif cell.kind == "shared" and route.method == "get":
            await self.shared_alike(where, route, cell, pair)
        elif cell.kind not in ("shared", "scoped", "creates"):
            self.problems.append(
                f"{where}: not an ownership: {cell.kind} (shared, scoped, creates, 403, 404)"
            )

    async def named(self, where: str, route: Route, cell: Ownership, pair: Pair) -> None:
        """Another owner naming my resource (in the path or the body) gets the declared refusal; I do not."""
        named = dict.fromkeys(PLACEHOLDER.findall(route.template + json.dumps(cell.body)))
        owned = [name for name in named if name in pair[0].owned]
        if not owned:
            self.problems.append(f"{where}: the owners own nothing this route names: extend the story")
            return
        for caller, owner in (pair, pair[::-1]):
            other = await self.call(route, cell, caller, owner)
            if other is None:
                self.problems.append(f"{where}: no value for a parameter: declare it under `path`")
                return
            if other.status_code != int(cell.kind):
                self.problems.append(f"{where}: {caller.user.username} got {other.status_code} for another's")
            for parameter in owned[1:] if len(owned) > 1 else []:
                mixed = await self.call(route, cell, caller, owner, mixed=parameter)
                if mixed.status_code not in REFUSED:
                    self.problems.append(
                        f"{where}: own parent with another's {parameter}: {mixed.status_code}"
                    )
        for owner in pair:
            own = await self.call(route, cell, owner, owner)
            if own is not None and (own.status_code in REFUSED or own.status_code >= 500):
                self.problems.append(f"{where}: {owner.user.username} got {own.status_code} for its own")

    async def scoped(self, where: str, route: Route, cell: Ownership, pair: Pair) -> None:
        """Each owner sees its own data and never the other's; the route shows owned data at all."""
        shown = False
        for caller, other in (pair, pair[::-1]):
            answer = await self.call(route, cell, caller, caller)
            if answer is None or answer.status_code >= 300:
                self.problems.append(f"{where}: {caller.user.username} got {answer and answer.status_code}")
                return
            found = ids_in(answer.json())
            if found & other.ids():
                self.problems.append(f"{where}: {caller.user.username} sees {other.user.username}'s data")
            shown = shown or bool(found & caller.ids())
        if not shown:
            self.problems.append(f"{where}: shows neither owner anything of its own: the walk proves nothing")

    async def shared_alike(self, where: str, route: Route, cell: Ownership, pair: Pair) -> None:
        """Both owners see the same, and nothing either of them owns."""
        answers = [await self.call(route, cell, owner, owner) for owner in pair]
        if any(answer is None for answer in answers):
            return  # no shared resource to name: declared, not walked
        statuses = {answer.status_code for answer in answers}
        if len(statuses) != 1 or max(statuses) >= 500:
            self.problems.append(f"{where}: the two owners got {sorted(statuses)}")
            return
        found = [
            ids_in(answer.json()) if "json" in answer.headers.get("content-type", "") else set()
            for answer in answers
        ]
        if found[0] != found[1]:
            self.problems.append(f"{where}: declared shared, but the two owners see different things")
        if found[0] & (pair[0].ids() | pair[1].ids()):
            self.problems.append(f"{where}: declared shared, but it shows what an owner owns")


async def shared_ids(client: httpx.AsyncClient, app: Any, owners: Owners) -> dict[str, set[str]]:
    """Ids both owners of a role see in the lists they may call: catalogue ids to fill in shared routes."""
    seen: dict[str, set[str]] = {}
    declared = declared_matrix()
    for mounted in app.state.services:
        for route in service_routes(mounted.name, mounted.app.openapi()):
            entry = declared.get(route.service, {}).get(route.key)
            if route.method != "get" or "{" in route.template or entry in (None, "public", "login"):
                continue
            for role in sorted(allowed_roles(entry) & owners.keys()):
                found: list[dict[str, set[str]]] = [{}, {}]
                for owner, ids in zip(owners[role], found, strict=True):
                    answer = await client.get(route.url(), headers=owner.headers)
                    if answer.status_code == 200 and "json" in answer.headers.get("content-type", ""):
                        harvest(
                            answer.json(), segment_key(route.template.rstrip("/").rsplit("/", 1)[-1]), ids
                        )
                for key in found[0].keys() & found[1].keys():
                    seen.setdefault(key, set()).update(found[0][key] & found[1][key])
    return seen


async def test_no_owner_reads_or_changes_what_another_owner_of_the_same_role_owns(
    platform: Any, owners: Owners
) -> None:
    """Every route a party role may call declares its ownership, and two owners in Geel are walked."""
    app, client = platform
    declared, ownership = declared_matrix(), declared_ownership()
    walk = OwnershipWalk(client, await shared_ids(client, app, owners))
    for role, (first, second) in owners.items():
        if first.ids() & second.ids():
            walk.problems.append(
                f"{role}: both owners were given the same resource: {first.ids() & second.ids()}"
            )
    walked: set[tuple[str, str, str]] = set()
    routes = [r for m in app.state.services for r in service_routes(m.name, m.app.openapi())]
    for route in sorted(routes, key=lambda r: r.method != "get"):  # look before anything changes
        entry = declared.get(route.service, {}).get(route.key)
        if entry in (None, "public", "login"):
            continue
        for role in sorted(allowed_roles(entry) & owners.keys()):
            walked.add((route.service, route.key, role))
            cell = ownership_cell(ownership.get(route.service, {}), route, role)
            if cell is None:
                walk.problems.append(f"{route.service} {route.key} as {role}: no ownership in ownership.yaml")
            else:
                await walk.walk(route, role, cell, owners[role])
    for service, rows in ownership.items():
        for key, declared_cell in rows.items():
            roles = (
                declared_cell.keys()
                if isinstance(declared_cell, dict) and "kind" not in declared_cell
                else []
            )
            stale = [r for r in roles if (service, key, r) not in walked]
            if not roles and not any((service, key, r) in walked for r in owners):
                stale = ["every role"]
            walk.problems.extend(
                f"{service} {key} as {r}: ownership of a cell the matrix lacks" for r in stale
            )
    print(
        f"ownership: {len(walked)} route-role cells declared, {len(walk.exercised)} walked by two owners "
        f"({walk.calls} calls)"
    )
    assert not walk.problems, "\n".join(walk.problems)
    assert len(walk.exercised) > len(walked) // 2
