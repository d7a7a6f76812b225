"""The market service's tables (SQLAlchemy 2 Core) and their mapping to the domain's values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import time
from decimal import Decimal
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
    UniqueConstraint,
    Uuid,
    false,
)

from market import domain
from servicekit.db import UtcDateTime

metadata = MetaData()


markets = Table(
    "markets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("place_name", String(200), nullable=False),
    Column("address", String(300), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("timezone", String(50), nullable=False),
    Column("weekdays", JSON, nullable=False),
    Column("opens", String(5), nullable=False),
    Column("closes", String(5), nullable=False),
    Column("setup_starts", String(5), nullable=False),
    Column("setup_ends", String(5), nullable=False),
    Column("regulation", JSON, nullable=False),
    Column("plan", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant", "name", name="uq_markets_tenant_name"),
)

traders = Table(
    "traders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("user_subject", String(200), nullable=True),
    Column("kbo_number", String(10), nullable=False),
    Column("name", String(200), nullable=False),
    Column("products", JSON, nullable=False),
    Column("specialisation", String(100), nullable=True),
    Column("insurance_valid_until", Date, nullable=True),
    Column("food_registration", String(100), nullable=True),
    Column("staff", JSON, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    # The trader agreed to appear in open data (name, products, stalls); off until they say so.
    Column("open_data", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("tenant", "kbo_number", name="uq_traders_tenant_kbo"),
    UniqueConstraint("tenant", "user_subject", name="uq_traders_tenant_user"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("market_id", Uuid, ForeignKey("markets.id"), nullable=False, index=True),
    Column("trader_id", Uuid, ForeignKey("traders.id"), nullable=False, index=True),
    Column("stalls", JSON, nullable=False),
    Column("specialisation", String(100), nullable=True),
    Column("granted_on", Date, nullable=False),
    Column("transferred_on", Date, nullable=True),
    Column("ends_on", Date, nullable=True),
    Column("end_reason", String(30), nullable=True),
)

absences = Table(
    "absences",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("trader_id", Uuid, ForeignKey("traders.id"), nullable=False, index=True),
    Column("starts", Date, nullable=False),
    Column("ends", Date, nullable=False),
)

candidates = Table(
    "candidates",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("market_id", Uuid, ForeignKey("markets.id"), nullable=False, index=True),
    Column("trader_id", Uuid, ForeignKey("traders.id"), nullable=False),
    Column("specialisation", String(100), nullable=True),
    Column("priority_group", Integer, nullable=False),
    Column("registered_on", Date, nullable=False),
    UniqueConstraint("market_id", "trader_id", name="uq_candidates_market_trader"),
)

market_days = Table(
    "market_days",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("market_id", Uuid, ForeignKey("markets.id"), nullable=False),
    Column("date", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("cancel_reason", String(300), nullable=True),
    UniqueConstraint("market_id", "date", name="uq_market_days_market_date"),
)

applications = Table(
    "applications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("market_day_id", Uuid, ForeignKey("market_days.id"), nullable=False),
    Column("trader_id", Uuid, ForeignKey("traders.id"), nullable=False),
    Column("min_stalls", Integer, nullable=False),
    Column("max_stalls", Integer, nullable=False),
    Column("preferred_stalls", JSON, nullable=False),
    Column("anywhere", Boolean, nullable=False),
    Column("needs", JSON, nullable=False),
    Column("wants_move", Boolean, nullable=False),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("withdrawn_at", UtcDateTime, nullable=True),
    Index("ix_applications_day_trader", "market_day_id", "trader_id"),
)

allocations = Table(
    "allocations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("market_day_id", Uuid, ForeignKey("market_days.id"), nullable=False, index=True),
    Column("round", String(10), nullable=False),
    Column("final", Boolean, nullable=False),
    Column("method", String(30), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("solver", String(10), nullable=False),
    Column("optimal", Boolean, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("result", JSON, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("market_day_id", Uuid, ForeignKey("market_days.id"), nullable=False),
    Column("allocation_id", Uuid, ForeignKey("allocations.id"), nullable=False),
    Column("trader_id", Uuid, ForeignKey("traders.id"), nullable=False),
    Column("stalls", JSON, nullable=False),
    Column("holder", Boolean, nullable=False),
    Column("checked_in_at", UtcDateTime, nullable=True),
    Column("released_at", UtcDateTime, nullable=True),
    Column("release_reason", String(20), nullable=True),
    Index("ix_assignments_day_trader", "market_day_id", "trader_id"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("number", String(40), nullable=False, unique=True),
    Column("trader_id", Uuid, ForeignKey("traders.id"), nullable=False, index=True),
    Column("market_day_id", Uuid, ForeignKey("market_days.id"), nullable=False),
    Column("lines", JSON, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("note", Text, nullable=True),
    UniqueConstraint("market_day_id", "trader_id", name="uq_invoices_day_trader"),
)


def hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def parse_hhmm(value: str) -> time:
    return time.fromisoformat(value)


def regulation_of(data: dict[str, Any]) -> domain.Regulation:
    tariff = data.get("tariff", {})
    return domain.Regulation(
        method=domain.DailyPlaceMethod(data.get("method", "pre_registration")),
        pre_registration_order=domain.PreRegistrationOrder(data.get("pre_registration_order", "seniority")),
        release_time=parse_hhmm(data.get("release_time", "08:30")),
        max_stalls_per_trader=int(data.get("max_stalls_per_trader", 3)),
        quotas={str(k): int(v) for k, v in data.get("quotas", {}).items()},
        tariff=domain.Tariff(
            per_metre_cents=int(tariff.get("per_metre_cents", 0)),
            per_stall_cents=int(tariff.get("per_stall_cents", 0)),
            electricity_cents=int(tariff.get("electricity_cents", 0)),
        ),
    )


def plan_of(data: dict[str, Any], origin: tuple[float, float]) -> domain.MarketPlan:
    """The domain plan of a stored plan; positions become map metres east and north of `origin`."""
    stalls: list[domain.Stall] = []
    rows: list[domain.Row] = []
    for row in data.get("rows", []):
        numbers = []
        for stall in row.get("stalls", []):
            x, y = map_metres(stall["lat"], stall["lon"], origin)
            stalls.append(
                domain.Stall(
                    number=stall["number"],
                    length_m=Decimal(str(stall["length_m"])),
                    x=x,
                    y=y,
                    specialisation=stall.get("specialisation"),
                    features=frozenset(domain.StallFeature(f) for f in stall.get("features", [])),
                )
            )
            numbers.append(stall["number"])
        obstacles = tuple(domain.Obstacle(after) for after in row.get("obstacles_after", []))
        rows.append(domain.Row(row["name"], tuple(numbers), obstacles))
    return domain.MarketPlan(tuple(stalls), tuple(rows))


METRES_PER_DEGREE_LAT = 111_320.0


def map_metres(lat: float, lon: float, origin: tuple[float, float]) -> tuple[float, float]:
    """An equirectangular projection: accurate to centimetres over a market square."""
    lat0, lon0 = origin
    x = (lon - lon0) * METRES_PER_DEGREE_LAT * math.cos(math.radians(lat0))
    y = (lat - lat0) * METRES_PER_DEGREE_LAT
    return round(x, 3), round(y, 3)


def stall_index(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every stall of a stored plan by number, with its row name added."""
    return {
        stall["number"]: {**stall, "row": row["name"]}
        for row in plan.get("rows", [])
        for stall in row.get("stalls", [])
    }


def trader_of(row: Any) -> domain.Trader:
    return domain.Trader(
        id=str(row.id),
        kbo_number=row.kbo_number,
        name=row.name,
        products=tuple(row.products),
        specialisation=row.specialisation,
        insurance_valid_until=row.insurance_valid_until,
        food_registration=row.food_registration,
        staff=tuple(row.staff),
    )


def subscription_of(row: Any) -> domain.Subscription:
    return domain.Subscription(
        trader_id=str(row.trader_id),
        market_id=str(row.market_id),
        stalls=tuple(row.stalls),
        specialisation=row.specialisation,
        granted_on=row.granted_on,
        transferred_on=row.transferred_on,
    )


def application_of(row: Any, day: Any) -> domain.Application:
    return domain.Application(
        trader_id=str(row.trader_id),
        market_day=day,
        min_stalls=row.min_stalls,
        max_stalls=row.max_stalls,
        preferred_stalls=tuple(row.preferred_stalls),
        anywhere=row.anywhere,
        needs=frozenset(domain.StallFeature(n) for n in row.needs),
        submitted_at=row.submitted_at,
        withdrawn_at=row.withdrawn_at,
        wants_move=row.wants_move,
    )
