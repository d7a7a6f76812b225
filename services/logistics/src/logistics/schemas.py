"""Request and response bodies of the logistics API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.logistics import Recipient, UnassignedReason

Kind = Literal["van", "electric_van", "cargo_bike"]
LocalTime = str
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DailyWindow(_In):
    """A window in local time of day (Europe/Brussels), repeated every day."""

    start: LocalTime = Field(pattern=TIME_PATTERN, examples=["06:00"])
    end: LocalTime = Field(pattern=TIME_PATTERN, examples=["10:00"])


class Point(_In):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class HubIn(_In):
    code: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(default="", max_length=300)
    location: Point
    opening_hours: list[DailyWindow] = Field(default_factory=list)


class HubOut(HubIn):
    id: UUID
    tenant: str


class VehicleIn(_In):
    code: str = Field(min_length=1, max_length=50, examples=["1-VAN-001"])
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    capacity_kg: float = Field(gt=0)
    capacity_m3: float = Field(gt=0)
    gross_weight_kg: float = Field(default=0, ge=0, description="maximaalToegelatenMassa, for zone limits")
    speed_kmh: float | None = Field(default=None, gt=0, le=130)
    cost_per_km_cents: int = Field(default=0, ge=0)
    cost_per_hour_cents: int = Field(default=0, ge=0)
    shift: DailyWindow
    start_hub_id: UUID
    end_hub_id: UUID | None = None
    refrigerated: bool = False
    driver_id: str | None = Field(default=None, max_length=200, description="the driver's subject")


class VehicleOut(VehicleIn):
    id: UUID
    tenant: str
    active: bool


class AccessRuleIn(_In):
    kind: Kind
    windows: list[DailyWindow] = Field(default_factory=list, description="empty: at any time")


class ZoneIn(_In):
    code: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1, max_length=200)
    geometry: dict[str, Any] = Field(description="a GeoJSON Polygon or MultiPolygon (or a Feature of one)")
    rules: list[AccessRuleIn] = Field(description="the vehicle kinds allowed in, and when")
    max_weight_kg: float | None = Field(default=None, gt=0)


class ZoneOut(_In):
    """A zone as a GeoJSON Feature, for the map."""

    type: Literal["Feature"] = "Feature"
    id: UUID
    geometry: dict[str, Any]
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]


class WindowIn(_In):
    start: AwareDatetime
    end: AwareDatetime


class RecipientIn(_In):
    kind: Literal["shop", "market_stall"] = "shop"
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(default="", max_length=300)
    address_uri: str | None = Field(default=None, max_length=300)
    shop_id: str | None = Field(default=None, max_length=100)
    trader_id: UUID | None = Field(default=None, description="for a market stall: the market's trader id")
    location: Point | None = Field(default=None, description="required for a shop")


class SupplierIn(_In):
    name: str = Field(min_length=1, max_length=200)
    location: Point
    windows: list[WindowIn] = Field(default_factory=list)
    service_s: int = Field(default=300, ge=0, le=7200)


class OrderIn(_In):
    reference: str = Field(default="", max_length=100)
    shipper_id: str | None = Field(
        default=None, max_length=200, description="operators only; else the caller"
    )
    recipient: RecipientIn
    delivery_date: date
    wave: str = Field(default="", max_length=50)
    windows: list[WindowIn] = Field(default_factory=list, description="empty only for a market stall")
    weight_kg: float = Field(ge=0, le=10_000)
    volume_m3: float = Field(ge=0, le=100)
    service_s: int = Field(default=180, ge=0, le=7200)
    priority: int = Field(default=1, ge=0, le=3)
    cold_chain: bool = False
    hub_id: UUID | None = Field(default=None, description="pickup at this hub (or give supplier)")
    supplier: SupplierIn | None = None


class OrderOut(BaseModel):
    id: UUID
    tenant: str
    reference: str
    shipper_id: str
    recipient: Recipient
    delivery_date: date
    wave: str
    windows: list[WindowIn]
    weight_kg: float
    volume_m3: float
    service_s: int
    priority: int
    cold_chain: bool
    pickup: dict[str, Any]
    status: str
    status_reason: str
    created_at: datetime


class CancelIn(_In):
    reason: str = Field(default="", max_length=300)


class PlanningRunIn(_In):
    delivery_date: date
    wave: str = Field(default="", max_length=50, description="plan only this wave's orders; empty: all")
    time_limit_s: float | None = Field(default=None, gt=0, le=300)
    objective: Literal["distance", "cost", "vehicles_then_distance", "vehicles_then_cost"] = (
        "vehicles_then_distance"
    )


class ReplanIn(_In):
    at: AwareDatetime | None = Field(default=None, description="the moment of re-planning; default now")
    broken_down: list[UUID] = Field(default_factory=list, description="vehicles out of service")
    time_limit_s: float | None = Field(default=None, gt=0, le=300)


class DispatchIn(_In):
    drivers: dict[UUID, str] = Field(default_factory=dict, description="vehicle id → driver subject override")


class UnassignedOut(BaseModel):
    order_id: UUID
    reason: UnassignedReason
    detail: str


class PlanningRunOut(BaseModel):
    id: UUID
    tenant: str
    delivery_date: date
    wave: str
    objective: str
    time_limit_s: float
    status: str
    replan_of: UUID | None
    dispatched: bool
    progress: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    unassigned: list[UnassignedOut] = Field(default_factory=list)


class StopOut(BaseModel):
    seq: int
    order_id: UUID
    kind: str
    location: Point
    recipient: Recipient | None
    arrival: datetime
    service_start: datetime
    departure: datetime
    load_kg: float
    load_m3: float
    status: str
    outcome_at: datetime | None
    reason: str | None
    note: str
    proof: str | None


class RouteOut(BaseModel):
    id: UUID
    run_id: UUID
    delivery_date: date
    vehicle_id: UUID
    vehicle_code: str
    vehicle_kind: str
    driver_id: str | None
    status: str
    start: Point
    departure: datetime
    arrival: datetime
    distance_m: int
    duration_s: int
    start_load_kg: float
    start_load_m3: float
    stops: list[StopOut]


class StopDoneIn(_In):
    at: AwareDatetime | None = None
    proof: str | None = Field(default=None, max_length=500)


class StopFailedIn(_In):
    reason: Literal["recipient_absent", "refused", "damaged", "no_access", "other"]
    note: str = Field(default="", max_length=500)
    at: AwareDatetime | None = None
    proof: str | None = Field(default=None, max_length=500)
