"""The logistics database: hubs, fleet, zones, orders, stall positions, planning runs, routes, stops."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    text,
)

from servicekit.db import UtcDateTime


def _tenant() -> Column[Any]:
    return Column("tenant", String(10), nullable=False, index=True)


metadata = MetaData()

hubs = Table(
    "hubs",
    metadata,
    Column("id", Uuid, primary_key=True),
    _tenant(),
    Column("code", String(50), nullable=False),
    Column("name", String(200), nullable=False),
    Column("address", String(300), nullable=False, default=""),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("opening_hours", JSON, nullable=False),  # [{"start": "05:00", "end": "20:00"}] local time
    Column("created_at", UtcDateTime, nullable=False),
    Index("uq_hubs_tenant_code", "tenant", "code", unique=True),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", Uuid, primary_key=True),
    _tenant(),
    Column("code", String(50), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("capacity_kg", Float, nullable=False),
    Column("capacity_m3", Float, nullable=False),
    Column("gross_weight_kg", Float, nullable=False),
    Column("speed_kmh", Float, nullable=True),
    Column("cost_per_km_cents", Integer, nullable=False),
    Column("cost_per_hour_cents", Integer, nullable=False),
    Column("shift_start", String(5), nullable=False),  # local time of day "06:00"
    Column("shift_end", String(5), nullable=False),
    Column("start_hub_id", Uuid, ForeignKey("hubs.id"), nullable=False),
    Column("end_hub_id", Uuid, ForeignKey("hubs.id"), nullable=False),
    Column("refrigerated", Boolean, nullable=False, default=False),
    Column("driver_id", String(200), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("uq_vehicles_tenant_code", "tenant", "code", unique=True),
)

zones = Table(
    "zones",
    metadata,
    Column("id", Uuid, primary_key=True),
    _tenant(),
    Column("code", String(50), nullable=False),
    Column("name", String(200), nullable=False),
    Column("geometry", JSON, nullable=False),  # GeoJSON Polygon or MultiPolygon
    Column(
        "rules", JSON, nullable=False
    ),  # [{"kind": "van", "windows": [{"start": "06:00", "end": "10:00"}]}]
    Column("max_weight_kg", Float, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("uq_zones_tenant_code", "tenant", "code", unique=True),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    _tenant(),
    Column("reference", String(100), nullable=False, default=""),
    Column("shipper_id", String(200), nullable=False, index=True),
    Column("recipient", JSON, nullable=False),  # contracts.logistics.Recipient as JSON
    Column("lat", Float, nullable=True),  # null while a market stall is not allocated
    Column("lon", Float, nullable=True),
    Column("delivery_date", Date, nullable=False),
    Column("wave", String(50), nullable=False, default=""),
    Column("windows", JSON, nullable=False),  # [{"start": iso, "end": iso}]
    Column("weight_kg", Float, nullable=False),
    Column("volume_m3", Float, nullable=False),
    Column("service_s", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("cold_chain", Boolean, nullable=False, default=False),
    Column(
        "pickup", JSON, nullable=False
    ),  # {"hub_id": ...} or {"name", "lat", "lon", "windows", "service_s"}
    Column("status", String(20), nullable=False),
    Column("status_reason", String(300), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # A digest of the placing request: a retry with the same reference must carry the same order.
    Column("request_digest", String(64), nullable=True),
    Index("ix_orders_tenant_date", "tenant", "delivery_date"),
    # A shipper's reference names one order: placing it again (a retry after a lost answer) is the same order.
    Index(
        "uq_orders_shipper_reference",
        "tenant",
        "shipper_id",
        "reference",
        unique=True,
        sqlite_where=text("reference <> ''"),
        postgresql_where=text("reference <> ''"),
    ),
)

stall_positions = Table(
    "stall_positions",
    metadata,
    Column("market_day_id", Uuid, primary_key=True),
    Column("trader_id", Uuid, primary_key=True),
    _tenant(),
    Column("market_date", Date, nullable=False),
    Column("market_name", String(200), nullable=False),
    Column("stall_numbers", JSON, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("setup_starts_at", UtcDateTime, nullable=False),
    Column("setup_ends_at", UtcDateTime, nullable=False),
    Column("allocation_id", Uuid, nullable=False),
    Index("ix_stall_positions_trader_date", "tenant", "trader_id", "market_date"),
)

planning_runs = Table(
    "planning_runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    _tenant(),
    Column("delivery_date", Date, nullable=False),
    Column("wave", String(50), nullable=False, default=""),
    Column("objective", String(40), nullable=False),
    Column("time_limit_s", Float, nullable=False),
    Column("status", String(20), nullable=False),  # queued running completed failed superseded
    Column("replan_of", Uuid, nullable=True),
    Column("replan_at", UtcDateTime, nullable=True),
    Column("broken_down", JSON, nullable=False),  # vehicle ids
    Column("progress", JSON, nullable=True),
    Column("summary", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("dispatched", Boolean, nullable=False, default=False),
    Column("requested_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_planning_runs_tenant_date", "tenant", "delivery_date"),
)

routes = Table(
    "routes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, ForeignKey("planning_runs.id"), nullable=False, index=True),
    _tenant(),
    Column("vehicle_id", Uuid, ForeignKey("vehicles.id"), nullable=False),
    Column("vehicle_kind", String(20), nullable=False),
    Column("driver_id", String(200), nullable=True, index=True),
    Column("status", String(20), nullable=False),  # planned dispatched superseded
    Column("start_hub_id", Uuid, nullable=False),
    Column("end_hub_id", Uuid, nullable=False),
    Column("start_lat", Float, nullable=False),
    Column("start_lon", Float, nullable=False),
    Column("departure", UtcDateTime, nullable=False),
    Column("arrival", UtcDateTime, nullable=False),
    Column("distance_m", Integer, nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("start_load_kg", Float, nullable=False),
    Column("start_load_m3", Float, nullable=False),
    Column("dispatched_at", UtcDateTime, nullable=True),
)

route_stops = Table(
    "route_stops",
    metadata,
    Column("route_id", Uuid, ForeignKey("routes.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("order_id", Uuid, ForeignKey("orders.id"), nullable=False, index=True),
    Column("kind", String(10), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("arrival", UtcDateTime, nullable=False),
    Column("service_start", UtcDateTime, nullable=False),
    Column("departure", UtcDateTime, nullable=False),
    Column("load_kg", Float, nullable=False),
    Column("load_m3", Float, nullable=False),
    Column("status", String(10), nullable=False),  # planned done failed
    Column("outcome_at", UtcDateTime, nullable=True),
    Column("reason", String(30), nullable=True),
    Column("note", String(500), nullable=False, default=""),
    Column("proof", String(500), nullable=True),
)

unassigned_orders = Table(
    "unassigned_orders",
    metadata,
    Column("run_id", Uuid, ForeignKey("planning_runs.id"), primary_key=True),
    Column("order_id", Uuid, ForeignKey("orders.id"), primary_key=True),
    Column("reason", String(40), nullable=False),
    Column("detail", String(300), nullable=False, default=""),
)
