"""The open-data service's tables: projections of other services' events, never their private details.

Citizens appear only as keyed pseudonyms (to count distinct people); traders' names only when they agreed.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    false,
)

from servicekit.db import UtcDateTime

metadata = MetaData()

# The key of the citizens' pseudonyms: made once per database, so counts stay right across restarts.
pseudonym_key = Table(
    "pseudonym_key",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(128), nullable=False),
)

districts = Table(
    "districts",
    metadata,
    Column("tenant", String(20), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("geometry", JSON, nullable=False),
)

traders = Table(
    "traders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("products", JSON, nullable=False),
    Column("specialisation", String(100), nullable=True),
    Column("open_data", Boolean, nullable=False, server_default=false()),
)

market_days = Table(
    "market_days",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("market_id", Uuid, nullable=False),
    Column("market_name", String(200), nullable=False),
    Column("market_date", Date, nullable=False),
    Column("place", JSON, nullable=False),
    Column("opens_at", UtcDateTime, nullable=False),
    Column("closes_at", UtcDateTime, nullable=False),
    Column("cancelled", Boolean, nullable=False, server_default=false()),
    Index("ix_market_days_tenant_date", "tenant", "market_date"),
)

stalls = Table(
    "stalls",
    metadata,
    Column("market_day_id", Uuid, primary_key=True),
    Column("number", String(20), primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("row", String(50), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("length_cm", Integer, nullable=False),
    Column("features", JSON, nullable=False),
    Column("trader_id", Uuid, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("day", Date, nullable=False),
    Column("route_id", Uuid, nullable=False),
    Column("vehicle_kind", String(30), nullable=False),
    Column("route_distance_m", Integer, nullable=False),
    Column("zones", JSON, nullable=False),
    Index("ix_deliveries_tenant_day", "tenant", "day"),
)

trips = Table(
    "trips",
    metadata,
    Column("trip_id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("month", String(7), nullable=False),
    Column("mode", String(30), nullable=False),
    Column("district", String(100), nullable=False),
    Column("person", String(32), nullable=False),
    Column("city_share_cents", Integer, nullable=False),
    Column("refunded_cents", Integer, nullable=False, server_default="0"),
    Index("ix_trips_tenant_month", "tenant", "month"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("sponsor", String(200), nullable=False),
    Column("coin_code", String(40), nullable=False),
    Column("budget_coins", Integer, nullable=False),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=True),
    Column("ended", Boolean, nullable=False, server_default=false()),
)

coin_movements = Table(
    "coin_movements",
    metadata,
    Column("id", Uuid, primary_key=True),  # the issuance, redemption or expiry id
    Column("tenant", String(20), nullable=False),
    Column("kind", String(10), nullable=False),  # issued | redeemed | expired
    Column("campaign_id", Uuid, nullable=True),
    Column("coin_code", String(40), nullable=False),
    Column("month", String(7), nullable=False),
    Column("person", String(32), nullable=True),  # a citizen's pseudonym; None for businesses
    Column("amount", Integer, nullable=False),
    Index("ix_coin_movements_tenant_month", "tenant", "month"),
)

# The public events of a tenant, numbered from 0: the pages of the event stream are slices of this order.
stream_members = Table(
    "stream_members",
    metadata,
    Column("tenant", String(20), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("service", String(50), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Column("data", JSON, nullable=False),
)
