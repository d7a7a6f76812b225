"""The open-data API: datasets, catalogue, contexts and event stream per municipality; districts.

Everything under `/v1/public/` needs no login (and is rate-limited per client like every public route).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, cast

import rdflib
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import delete, func, insert, select

from contracts import jsonld
from opendata import datasets, domain, linked, store
from opendata.settings import Settings
from servicekit.auth import Principal, require_roles
from servicekit.problems import Problem
from servicekit.service import CurrentSettings, UowFactory

router = APIRouter(prefix="/v1")
CityAdmin = Annotated[Principal, Depends(require_roles("city_admin"))]
Tenant = Annotated[str, Path(pattern=r"^[0-9]{5}$", description="NIS code of the municipality, e.g. 71022")]

JSONLD = "application/ld+json"
CSV = "text/csv; charset=utf-8"
TURTLE = "text/turtle; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
FRESH = "public, max-age=10"


def _settings(settings: CurrentSettings) -> Settings:
    return cast(Settings, settings)


OpenDataSettings = Annotated[Settings, Depends(_settings)]


def base_url(request: Request, settings: Settings) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    # Mounted under a prefix (the embedded platform's /opendata), the prefix is the scope's root path.
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def municipality(settings: Settings, tenant: str) -> str:
    name = settings.municipalities.get(tenant)
    if name is None:
        raise Problem(404, f"no municipality {tenant} publishes open data here")
    return name


def _document(body: Any, media_type: str, cache: str, request: Request) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str)
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    headers = {"Cache-Control": cache, "ETag": etag, "Vary": "Accept"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(text, media_type=media_type, headers=headers)


def _wants(request: Request, media: str) -> bool:
    return media in request.headers.get("accept", "")


LINKED: dict[int | str, dict[str, Any]] = {200: {"content": {JSONLD: {}}}}
TABULAR: dict[int | str, dict[str, Any]] = {200: {"content": {JSONLD: {}, "text/csv": {}}}}
TURTLE_DOC: dict[int | str, dict[str, Any]] = {200: {"content": {JSONLD: {}, "text/turtle": {}}}}


@router.get("/public/contexts/{service}.jsonld", tags=["public"], response_class=Response, responses=LINKED)
async def context(service: str, request: Request) -> Response:
    """The JSON-LD context of a service's events and API: every field mapped to an OSLO or project term."""
    if service not in jsonld.API_SERVICES:
        raise Problem(404, f"no context for {service!r}; there are {', '.join(jsonld.API_SERVICES)}")
    return _document(jsonld.context_for(service), JSONLD, "public, max-age=3600", request)


@router.get("/public/{tenant}/catalog", tags=["public"], response_class=Response, responses=TURTLE_DOC)
async def catalog(
    tenant: Tenant, request: Request, settings: OpenDataSettings, uow_factory: UowFactory
) -> Response:
    """The municipality's DCAT-AP Vlaanderen catalogue (JSON-LD; Turtle with `Accept: text/turtle`)."""
    return await _catalogue(tenant, request, settings, uow_factory, turtle=_wants(request, "text/turtle"))


@router.get("/public/{tenant}/catalog.ttl", tags=["public"], response_class=Response, responses=TURTLE_DOC)
async def catalog_turtle(
    tenant: Tenant, request: Request, settings: OpenDataSettings, uow_factory: UowFactory
) -> Response:
    """The catalogue in Turtle, for harvesters that fetch a file."""
    return await _catalogue(tenant, request, settings, uow_factory, turtle=True)


async def _catalogue(
    tenant: str, request: Request, settings: Settings, uow_factory: Any, *, turtle: bool
) -> Response:
    name = municipality(settings, tenant)
    modified = await _modified(uow_factory, tenant)
    document = linked.catalogue_jsonld(
        base_url(request, settings), tenant, name, settings.contact_email, modified
    )
    if turtle:
        graph = rdflib.Graph().parse(data=json.dumps(document), format="json-ld")
        return _document(graph.serialize(format="turtle"), TURTLE, FRESH, request)
    return _document(document, JSONLD, FRESH, request)


async def _modified(uow_factory: Any, tenant: str) -> dict[str, datetime | None]:
    async with uow_factory() as uow:
        days = await uow.session.execute(
            select(func.max(store.market_days.c.closes_at)).where(store.market_days.c.tenant == tenant)
        )
        return {"market-stalls": days.scalar_one()}


async def _rows(
    uow_factory: Any, tenant: str, dataset: datasets.Dataset, settings: Settings
) -> list[dict[str, Any]]:
    async with uow_factory() as uow:
        return await dataset.rows(uow.session, tenant, settings.min_group_size)


def _dataset(dataset_id: str) -> datasets.Dataset:
    found = datasets.BY_ID.get(dataset_id)
    if found is None:
        raise Problem(404, f"no dataset {dataset_id!r}; there are {', '.join(datasets.BY_ID)}")
    return found


@router.get(
    "/public/{tenant}/datasets/{dataset_id}.{extension}",
    tags=["public"],
    response_class=Response,
    responses=TABULAR,
)
async def dataset_file(
    tenant: Tenant,
    dataset_id: str,
    extension: Annotated[str, Path(pattern="^(jsonld|csv)$")],
    request: Request,
    settings: OpenDataSettings,
    uow_factory: UowFactory,
) -> Response:
    """A dataset as a file: `.jsonld` (OSLO terms) or `.csv` (same column names)."""
    name = municipality(settings, tenant)
    del name
    dataset = _dataset(dataset_id)
    rows = await _rows(uow_factory, tenant, dataset, settings)
    if extension == "csv":
        return _document(linked.dataset_csv(dataset, rows), CSV, FRESH, request)
    return _document(
        linked.dataset_jsonld(base_url(request, settings), tenant, dataset, rows), JSONLD, FRESH, request
    )


@router.get(
    "/public/{tenant}/datasets/{dataset_id}", tags=["public"], response_class=Response, responses=TABULAR
)
async def dataset(
    tenant: Tenant, dataset_id: str, request: Request, settings: OpenDataSettings, uow_factory: UowFactory
) -> Response:
    """A dataset, negotiated: CSV with `Accept: text/csv`, else JSON-LD."""
    municipality(settings, tenant)
    found = _dataset(dataset_id)
    rows = await _rows(uow_factory, tenant, found, settings)
    if _wants(request, "text/csv"):
        return _document(linked.dataset_csv(found, rows), CSV, FRESH, request)
    return _document(
        linked.dataset_jsonld(base_url(request, settings), tenant, found, rows), JSONLD, FRESH, request
    )


@router.get("/public/{tenant}/stream", tags=["public"], response_class=Response, responses=LINKED)
async def stream(tenant: Tenant, request: Request, settings: OpenDataSettings) -> Response:
    """The public event stream (LDES): its view starts at page 0."""
    municipality(settings, tenant)
    root = linked.tenant_base(base_url(request, settings), tenant)
    document = {
        "@context": linked.DCAT_CONTEXT,
        "@id": f"{root}/stream",
        "@type": "ldes:EventStream",
        "ldes:timestampPath": {"@id": "prov:generatedAtTime"},
        "ldes:versionOfPath": {"@id": "dcterms:isVersionOf"},
        "tree:view": {"@id": f"{root}/stream/pages/0"},
    }
    return _document(document, JSONLD, "public, max-age=3600", request)


@router.get(
    "/public/{tenant}/stream/pages/{page}", tags=["public"], response_class=Response, responses=LINKED
)
async def stream_page(
    tenant: Tenant,
    page: Annotated[int, Path(ge=0, le=10_000_000)],
    request: Request,
    settings: OpenDataSettings,
    uow_factory: UowFactory,
) -> Response:
    """One page of the stream. A full page never changes again and is cached as immutable."""
    municipality(settings, tenant)
    size = settings.stream_page_size
    table = store.stream_members
    async with uow_factory() as uow:
        total = (
            await uow.session.execute(select(func.count()).select_from(table).where(table.c.tenant == tenant))
        ).scalar_one()
        if page > total // size:
            raise Problem(404, f"page {page} does not exist yet; the stream has {total} members")
        rows = await uow.session.execute(
            select(table)
            .where(
                table.c.tenant == tenant,
                table.c.position >= page * size,
                table.c.position < (page + 1) * size,
            )
            .order_by(table.c.position)
        )
        members = [dict(row._mapping) for row in rows]
    full = len(members) == size
    document = linked.stream_page(base_url(request, settings), tenant, page, size, members, has_next=full)
    return _document(document, JSONLD, IMMUTABLE if full else FRESH, request)


@router.get(
    "/public/{tenant}/stream/members/{event_id}", tags=["public"], response_class=Response, responses=LINKED
)
async def stream_member(
    tenant: Tenant, event_id: str, request: Request, settings: OpenDataSettings, uow_factory: UowFactory
) -> Response:
    """One member of the stream, dereferenced."""
    municipality(settings, tenant)
    table = store.stream_members
    async with uow_factory() as uow:
        row = (
            await uow.session.execute(
                select(table).where(table.c.tenant == tenant, table.c.event_id == event_id)
            )
        ).first()
    if row is None:
        raise Problem(404, f"no public event {event_id!r} of {tenant}")
    root = linked.tenant_base(base_url(request, settings), tenant)
    return _document(linked.stream_member(root, dict(row._mapping)), JSONLD, IMMUTABLE, request)


@router.get("/public/{tenant}", tags=["public"], include_in_schema=False)
async def tenant_home(tenant: Tenant, request: Request, settings: OpenDataSettings) -> RedirectResponse:
    municipality(settings, tenant)
    return RedirectResponse(f"{linked.tenant_base(base_url(request, settings), tenant)}/catalog")


# --- districts (city admins) --------------------------------------------------------------------------------


@router.get("/admin/districts", tags=["admin"])
async def get_districts(principal: CityAdmin, uow_factory: UowFactory) -> dict[str, Any]:
    """The municipality's district boundaries used for statistics (a GeoJSON FeatureCollection)."""
    table = store.districts
    async with uow_factory() as uow:
        rows = await uow.session.execute(
            select(table.c.name, table.c.geometry)
            .where(table.c.tenant == principal.tenant)
            .order_by(table.c.position)
        )
        features = [{"type": "Feature", "properties": {"name": n}, "geometry": g} for n, g in rows]
    return {"type": "FeatureCollection", "features": features}


@router.put("/admin/districts", tags=["admin"])
async def put_districts(
    principal: CityAdmin, body: dict[str, Any], uow_factory: UowFactory
) -> dict[str, Any]:
    """Replace the district boundaries; trips paid from now on are counted in these districts."""
    try:
        checked = domain.check_districts(body)
    except domain.InvalidDistricts as error:
        raise Problem(422, str(error)) from None
    async with uow_factory() as uow:
        await replace_districts(uow.session, principal.tenant, checked)
    return await get_districts(principal, uow_factory)


async def replace_districts(session: Any, tenant: str, districts: list[domain.District]) -> None:
    table = store.districts
    await session.execute(delete(table).where(table.c.tenant == tenant))
    if districts:
        await session.execute(
            insert(table),
            [
                {"tenant": tenant, "name": d.name, "position": i, "geometry": dict(d.geometry)}
                for i, d in enumerate(districts)
            ],
        )
