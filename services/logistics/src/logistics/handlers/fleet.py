"""Commands and queries of the tenant's hubs, vehicles and access zones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import insert, select

from eventbus import UnitOfWorkFactory
from logistics import domain, records, store
from logistics.handlers.errors import NotFound, field_errors
from logistics.schemas import FeatureCollection, HubIn, HubOut, VehicleIn, VehicleOut, ZoneIn, ZoneOut
from servicekit.auth import Principal
from servicekit.problems import Problem


async def create_hub(uow_factory: UnitOfWorkFactory, principal: Principal, body: HubIn) -> HubOut:
    opening = [w.model_dump() for w in body.opening_hours]
    with field_errors():
        records.check_daily(opening, "opening_hours")
    hub_id = uuid4()
    async with uow_factory() as uow:
        await _unique(uow.session, store.hubs, principal.tenant, body.code)
        await uow.session.execute(
            insert(store.hubs).values(
                id=hub_id,
                tenant=principal.tenant,
                code=body.code,
                name=body.name,
                address=body.address,
                lat=body.location.lat,
                lon=body.location.lon,
                opening_hours=opening,
                created_at=datetime.now(UTC),
            )
        )
    return HubOut(id=hub_id, tenant=principal.tenant, **body.model_dump())


async def list_hubs(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[HubOut]:
    async with uow_factory() as uow:
        rows = (
            await uow.session.execute(select(store.hubs).where(store.hubs.c.tenant == principal.tenant))
        ).mappings()
        return [_hub_out(row) for row in rows]


def _hub_out(row: Any) -> HubOut:
    return HubOut(
        id=row["id"],
        tenant=row["tenant"],
        code=row["code"],
        name=row["name"],
        address=row["address"],
        location={"lat": row["lat"], "lon": row["lon"]},
        opening_hours=row["opening_hours"],
    )


async def _unique(session: Any, table: Any, tenant: str, code: str) -> None:
    found = await session.scalar(select(table.c.id).where(table.c.tenant == tenant, table.c.code == code))
    if found is not None:
        raise Problem(
            409, f"code {code!r} is already used", errors=[{"loc": ["body", "code"], "msg": "taken"}]
        )


async def create_vehicle(uow_factory: UnitOfWorkFactory, principal: Principal, body: VehicleIn) -> VehicleOut:
    end_hub = body.end_hub_id or body.start_hub_id
    with field_errors():
        records.check_daily([body.shift.model_dump()], "shift")
    vehicle_id = uuid4()
    async with uow_factory() as uow:
        for field, hub_id in (("start_hub_id", body.start_hub_id), ("end_hub_id", end_hub)):
            tenant = await uow.session.scalar(select(store.hubs.c.tenant).where(store.hubs.c.id == hub_id))
            if tenant != principal.tenant:
                with field_errors():
                    raise domain.UnknownReference(field, f"no hub {hub_id}")
        await _unique(uow.session, store.vehicles, principal.tenant, body.code)
        values = body.model_dump(exclude={"shift", "end_hub_id"})
        await uow.session.execute(
            insert(store.vehicles).values(
                id=vehicle_id,
                tenant=principal.tenant,
                shift_start=body.shift.start,
                shift_end=body.shift.end,
                end_hub_id=end_hub,
                active=True,
                created_at=datetime.now(UTC),
                **values,
            )
        )
    return VehicleOut(
        id=vehicle_id, tenant=principal.tenant, active=True, **{**body.model_dump(), "end_hub_id": end_hub}
    )


async def list_vehicles(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[VehicleOut]:
    async with uow_factory() as uow:
        table = store.vehicles
        rows = (await uow.session.execute(select(table).where(table.c.tenant == principal.tenant))).mappings()
        return [vehicle_out(row) for row in rows]


def vehicle_out(row: Any) -> VehicleOut:
    values = {k: row[k] for k in VehicleOut.model_fields if k != "shift" and k in row}
    return VehicleOut(shift={"start": row["shift_start"], "end": row["shift_end"]}, **values)


async def create_zone(uow_factory: UnitOfWorkFactory, principal: Principal, body: ZoneIn) -> ZoneOut:
    rules = [rule.model_dump() for rule in body.rules]
    with field_errors():
        domain.area_from_geojson(body.geometry, "geometry")
        for i, rule in enumerate(rules):
            records.check_daily(rule["windows"], f"rules[{i}].windows")
    geometry = (
        body.geometry.get("geometry", body.geometry)
        if body.geometry.get("type") == "Feature"
        else body.geometry
    )
    zone_id = uuid4()
    async with uow_factory() as uow:
        await _unique(uow.session, store.zones, principal.tenant, body.code)
        row = {
            "id": zone_id,
            "tenant": principal.tenant,
            "code": body.code,
            "name": body.name,
            "geometry": geometry,
            "rules": rules,
            "max_weight_kg": body.max_weight_kg,
            "created_at": datetime.now(UTC),
        }
        await uow.session.execute(insert(store.zones).values(**row))
    return zone_out(row)


async def list_zones(uow_factory: UnitOfWorkFactory, principal: Principal) -> FeatureCollection:
    async with uow_factory() as uow:
        table = store.zones
        rows = (await uow.session.execute(select(table).where(table.c.tenant == principal.tenant))).mappings()
        return FeatureCollection(features=[zone_out(row).model_dump(mode="json") for row in rows])


async def get_zone(uow_factory: UnitOfWorkFactory, principal: Principal, zone_id: UUID) -> ZoneOut:
    async with uow_factory() as uow:
        table = store.zones
        row = (await uow.session.execute(select(table).where(table.c.id == zone_id))).mappings().first()
    if row is None or row["tenant"] != principal.tenant:
        raise NotFound(f"no zone {zone_id}")
    return zone_out(row)


def zone_out(row: Any) -> ZoneOut:
    return ZoneOut(
        id=row["id"],
        geometry=row["geometry"],
        properties={
            "code": row["code"],
            "name": row["name"],
            "tenant": row["tenant"],
            "rules": row["rules"],
            "max_weight_kg": row["max_weight_kg"],
        },
    )
