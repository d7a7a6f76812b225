"""Stored rows turned into domain values for planning and into API views, and local times of day into UTC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contracts.logistics import Recipient
from logistics import domain
from logistics.schemas import OrderOut, Point, RouteOut, StopOut, WindowIn

Row = Mapping[Any, Any]


def local_moment(day: date, clock: str, zone: ZoneInfo) -> datetime:
    """A local time of day ("06:00", "24:00") on a date, as an aware UTC datetime."""
    hours, minutes = (int(part) for part in clock.split(":"))
    local = datetime.combine(day, time(0), tzinfo=zone) + timedelta(hours=hours, minutes=minutes)
    return local.astimezone(UTC)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return local_moment(day, "00:00", zone)


def daily_windows(
    day: date, windows: Sequence[Mapping[str, str]], zone: ZoneInfo
) -> tuple[domain.TimeWindow, ...]:
    return tuple(
        domain.TimeWindow(local_moment(day, w["start"], zone), local_moment(day, w["end"], zone))
        for w in windows
    )


def check_daily(windows: Sequence[Mapping[str, str]], field: str) -> None:
    """Local windows within one day: the end may not come before the start."""
    for i, window in enumerate(windows):
        if window["end"] < window["start"]:
            raise domain.InvalidTimeWindow(f"{field}[{i}]", "window ends before it starts")


def iso_windows(windows: Sequence[Mapping[str, Any]]) -> tuple[domain.TimeWindow, ...]:
    return tuple(domain.TimeWindow(_aware(w["start"]), _aware(w["end"])) for w in windows)


def _aware(value: str | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.astimezone(UTC)


def hub(row: Row, day: date, zone: ZoneInfo) -> domain.Hub:
    return domain.Hub(
        str(row["id"]),
        row["name"],
        domain.GeoPoint(row["lat"], row["lon"]),
        daily_windows(day, row["opening_hours"], zone),
    )


def vehicle(row: Row, day: date, zone: ZoneInfo) -> domain.Vehicle:
    kind = domain.VehicleKind(row["kind"])
    profile = None
    if row["speed_kmh"]:
        base = domain.DEFAULT_PROFILES[kind]
        profile = domain.SpeedProfile(
            f"{kind.value}-{row['speed_kmh']:g}", row["speed_kmh"], base.osrm_profile
        )
    return domain.Vehicle(
        id=str(row["id"]),
        kind=kind,
        capacity_kg=row["capacity_kg"],
        capacity_m3=row["capacity_m3"],
        shift=domain.TimeWindow(
            local_moment(day, row["shift_start"], zone), local_moment(day, row["shift_end"], zone)
        ),
        start_hub=str(row["start_hub_id"]),
        end_hub=str(row["end_hub_id"]),
        cost_per_km_cents=row["cost_per_km_cents"],
        cost_per_hour_cents=row["cost_per_hour_cents"],
        gross_weight_kg=row["gross_weight_kg"],
        refrigerated=row["refrigerated"],
        profile=profile,
    )


def zone(row: Row, day: date, tz: ZoneInfo) -> domain.AccessZone:
    rules = tuple(
        domain.AccessRule(domain.VehicleKind(rule["kind"]), daily_windows(day, rule.get("windows", []), tz))
        for rule in row["rules"]
    )
    return domain.AccessZone(
        str(row["id"]),
        row["name"],
        domain.area_from_geojson(row["geometry"], "geometry"),
        rules,
        row["max_weight_kg"],
    )


def order(row: Row) -> domain.Order:
    recipient = Recipient.model_validate(row["recipient"])
    place = domain.GeoPoint(row["lat"], row["lon"])
    target: domain.Recipient
    if recipient.kind == "market_stall":
        target = domain.MarketStall(str(recipient.market_day_id), ",".join(recipient.stall_numbers), place)
    else:
        target = domain.ShopAddress(recipient.address or recipient.name, place, recipient.address_uri)
    return domain.Order(
        id=str(row["id"]),
        shipper=row["shipper_id"],
        recipient=target,
        windows=iso_windows(row["windows"]),
        weight_kg=row["weight_kg"],
        volume_m3=row["volume_m3"],
        pickup=pickup(row["pickup"]),
        service_s=row["service_s"],
        priority=row["priority"],
        cold_chain=row["cold_chain"],
    )


def pickup(data: Mapping[str, Any]) -> domain.Pickup:
    if "hub_id" in data:
        return domain.HubPickup(str(data["hub_id"]))
    return domain.SupplierPickup(
        data["name"],
        domain.GeoPoint(data["lat"], data["lon"]),
        iso_windows(data.get("windows", [])),
        data.get("service_s", 300),
    )


def order_out(row: Row) -> OrderOut:
    return OrderOut(
        id=row["id"],
        tenant=row["tenant"],
        reference=row["reference"],
        shipper_id=row["shipper_id"],
        recipient=Recipient.model_validate(row["recipient"]),
        delivery_date=row["delivery_date"],
        wave=row["wave"],
        windows=[WindowIn.model_validate(w) for w in row["windows"]],
        weight_kg=row["weight_kg"],
        volume_m3=row["volume_m3"],
        service_s=row["service_s"],
        priority=row["priority"],
        cold_chain=row["cold_chain"],
        pickup=row["pickup"],
        status=row["status"],
        status_reason=row["status_reason"],
        created_at=row["created_at"],
    )


def planned_stop(row: Row) -> domain.PlannedStop:
    return domain.PlannedStop(
        order_id=str(row["order_id"]),
        kind=domain.StopKind(row["kind"]),
        location=domain.GeoPoint(row["lat"], row["lon"]),
        arrival=row["arrival"],
        service_start=row["service_start"],
        departure=row["departure"],
        load_kg=row["load_kg"],
        load_m3=row["load_m3"],
        completed=row["status"] != "planned",
    )


def route(row: Row, stops: Sequence[Row]) -> domain.Route:
    return domain.Route(
        vehicle_id=str(row["vehicle_id"]),
        start_hub=str(row["start_hub_id"]),
        end_hub=str(row["end_hub_id"]),
        departure=row["departure"],
        arrival=row["arrival"],
        stops=tuple(planned_stop(s) for s in stops),
        distance_m=row["distance_m"],
        duration_s=row["duration_s"],
        start_load_kg=row["start_load_kg"],
        start_load_m3=row["start_load_m3"],
        start_location=domain.GeoPoint(row["start_lat"], row["start_lon"]),
    )


def route_out(
    row: Row, stops: Sequence[Row], vehicle_code: str, day: date, recipients: Mapping[Any, Row]
) -> RouteOut:
    return RouteOut(
        id=row["id"],
        run_id=row["run_id"],
        delivery_date=day,
        vehicle_id=row["vehicle_id"],
        vehicle_code=vehicle_code,
        vehicle_kind=row["vehicle_kind"],
        driver_id=row["driver_id"],
        status=row["status"],
        start=Point(lat=row["start_lat"], lon=row["start_lon"]),
        departure=row["departure"],
        arrival=row["arrival"],
        distance_m=row["distance_m"],
        duration_s=row["duration_s"],
        start_load_kg=row["start_load_kg"],
        start_load_m3=row["start_load_m3"],
        stops=[stop_out(s, recipients.get(s["order_id"])) for s in stops],
    )


def stop_out(row: Row, order_row: Row | None) -> StopOut:
    recipient = Recipient.model_validate(order_row["recipient"]) if order_row else None
    return StopOut(
        seq=row["seq"],
        order_id=row["order_id"],
        kind=row["kind"],
        location=Point(lat=row["lat"], lon=row["lon"]),
        recipient=recipient,
        arrival=row["arrival"],
        service_start=row["service_start"],
        departure=row["departure"],
        load_kg=row["load_kg"],
        load_m3=row["load_m3"],
        status=row["status"],
        outcome_at=row["outcome_at"],
        reason=row["reason"],
        note=row["note"],
        proof=row["proof"],
    )


def route_feature(route_view: RouteOut) -> dict[str, Any]:
    """A route as a GeoJSON LineString through its stops, from and back to the hub, for the map."""
    path = [[route_view.start.lon, route_view.start.lat]]
    path += [[s.location.lon, s.location.lat] for s in route_view.stops]
    return {
        "type": "Feature",
        "id": str(route_view.id),
        "geometry": {"type": "LineString", "coordinates": path},
        "properties": {
            "vehicle_id": str(route_view.vehicle_id),
            "vehicle_code": route_view.vehicle_code,
            "vehicle_kind": route_view.vehicle_kind,
            "status": route_view.status,
            "distance_m": route_view.distance_m,
            "stops": len(route_view.stops),
        },
    }


def stop_features(route_view: RouteOut) -> list[dict[str, Any]]:
    return [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [s.location.lon, s.location.lat]},
            "properties": {
                "route_id": str(route_view.id),
                "seq": s.seq,
                "order_id": str(s.order_id),
                "kind": s.kind,
                "status": s.status,
                "eta": s.service_start.isoformat(),
                "name": s.recipient.name if s.recipient else "",
            },
        }
        for s in route_view.stops
    ]
