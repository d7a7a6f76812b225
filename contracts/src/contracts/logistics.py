"""Events of logistics: orders (OSLO `Vrachtgoed`), planning runs, dispatched routes and stop outcomes."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event

SERVICE = "logistics"
ORDERS = "logistics.orders"
PLANS = "logistics.plans"
ROUTES = "logistics.routes"

VehicleKind = Literal["van", "electric_van", "cargo_bike"]
"""The OSLO `Resource` kinds of the fleet; cargo-bike deliveries are the ones a city may reward."""

StopKind = Literal["pickup", "delivery"]
UnassignedReason = Literal[
    "no_allowed_vehicle",
    "capacity",
    "time_window_unreachable",
    "no_vehicle_at_hub",
    "fleet_exhausted",
    "stall_not_allocated",
]
FailureReason = Literal["recipient_absent", "refused", "damaged", "no_access", "other"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Recipient(_Part):
    """Who receives the goods: a shop at an address, or a market trader at their stall on a market day.

    `shop_id` is the recipient's own id at the shipper (or the KBO number of the shop's enterprise);
    `trader_id` is the market's trader id. `lat`/`lon` are absent while a stall is not allocated yet.
    """

    kind: Literal["shop", "market_stall"]
    name: str = Field(max_length=200)
    address: str = Field(default="", max_length=300, description="Adresvoorstelling, free-form")
    address_uri: str | None = Field(default=None, max_length=300, description="address-register URI")
    shop_id: str | None = Field(default=None, max_length=100)
    trader_id: UUID | None = None
    market_day_id: UUID | None = None
    stall_numbers: list[str] = Field(default_factory=list)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class Window(_Part):
    """A delivery window: the start of service must fall inside it."""

    start: AwareDatetime
    end: AwareDatetime


class OrderPlaced(Event, service=SERVICE, topic=ORDERS, key="order_id"):
    """A shipper placed a delivery order (OSLO `Vrachtgoed`: `gewicht`, `afmetingen`)."""

    order_id: UUID
    reference: str = Field(default="", max_length=100, description="the shipper's own order reference")
    shipper_id: str = Field(max_length=200, description="the shipper's subject or KBO number")
    recipient: Recipient
    delivery_date: date
    windows: list[Window] = Field(
        default_factory=list, description="empty while a market stall's set-up window is not known yet"
    )
    weight_kg: float = Field(ge=0, description="gewicht")
    volume_m3: float = Field(ge=0)
    pickup: Literal["hub", "supplier"]
    hub_id: UUID | None = Field(default=None, description="where the goods wait, for a hub pickup")
    priority: int = Field(ge=0, le=3)
    placed_at: AwareDatetime


class OrderCancelled(Event, service=SERVICE, topic=ORDERS, key="order_id"):
    """An order was withdrawn before it was delivered; it leaves every later plan."""

    order_id: UUID
    shipper_id: str = Field(max_length=200)
    reason: str = Field(default="", max_length=300)
    cancelled_at: AwareDatetime


class OrderUndeliverable(Event, service=SERVICE, topic=ORDERS, key="order_id"):
    """A planning run left an order out, with the reason (it may still fit a later run or wave)."""

    order_id: UUID
    planning_run_id: UUID
    shipper_id: str = Field(max_length=200)
    delivery_date: date
    reason: UnassignedReason
    detail: str = Field(default="", max_length=300)
    decided_at: AwareDatetime


class RouteSummary(_Part):
    """One vehicle's trip in a plan (OSLO `Route`: `vertrekpunt`, `aankomstpunt`, `afstand`, `reisduur`)."""

    route_id: UUID
    vehicle_id: UUID
    vehicle_kind: VehicleKind
    stops: int = Field(ge=0)
    deliveries: int = Field(ge=0)
    distance_m: int = Field(ge=0, description="afstand")
    duration_s: int = Field(ge=0, description="reisduur")
    departure: AwareDatetime
    arrival: AwareDatetime


class RoutesPlanned(Event, service=SERVICE, topic=PLANS, key="planning_run_id"):
    """A planning run (or a re-planning) of a tenant's day or wave finished with these routes."""

    planning_run_id: UUID
    delivery_date: date
    wave: str = Field(default="", max_length=50)
    replan_of: UUID | None = Field(default=None, description="the run this one re-planned")
    routes: list[RouteSummary]
    orders_planned: int = Field(ge=0)
    orders_left_out: int = Field(ge=0)
    distance_m: int = Field(ge=0)
    solver_seconds: float = Field(ge=0)
    planned_at: AwareDatetime


class RouteDispatched(Event, service=SERVICE, topic=ROUTES, key="route_id"):
    """A route was handed to its driver: the stops' order ids in the order they are to be visited."""

    route_id: UUID
    planning_run_id: UUID
    vehicle_id: UUID
    vehicle_kind: VehicleKind
    driver_id: str | None = Field(default=None, max_length=200, description="the driver's subject")
    delivery_date: date
    order_ids: list[UUID]
    departure: AwareDatetime
    dispatched_at: AwareDatetime


class StopCompleted(Event, service=SERVICE, topic=ORDERS, key="order_id"):
    """A driver completed a stop; for a delivery the goods reached the recipient (by this kind of vehicle)."""

    order_id: UUID
    route_id: UUID
    vehicle_id: UUID
    vehicle_kind: VehicleKind = Field(description="cargo_bike deliveries may earn the shop a reward")
    driver_id: str | None = Field(default=None, max_length=200)
    stop_kind: StopKind
    shipper_id: str = Field(max_length=200)
    recipient: Recipient
    weight_kg: float = Field(ge=0)
    distance_m: int = Field(ge=0, description="length of the route the stop is on")
    proof: str | None = Field(default=None, max_length=500, description="signature or photo reference")
    completed_at: AwareDatetime
    zones: list[str] = Field(default_factory=list, description="names of the access zones the stop lies in")


class StopFailed(Event, service=SERVICE, topic=ORDERS, key="order_id"):
    """A driver could not complete a stop; the reason and proof of the attempt travel with it."""

    order_id: UUID
    route_id: UUID
    vehicle_id: UUID
    vehicle_kind: VehicleKind
    driver_id: str | None = Field(default=None, max_length=200)
    stop_kind: StopKind
    shipper_id: str = Field(max_length=200)
    recipient: Recipient
    reason: FailureReason
    note: str = Field(default="", max_length=500)
    proof: str | None = Field(default=None, max_length=500)
    failed_at: AwareDatetime
    zones: list[str] = Field(default_factory=list, description="names of the access zones the stop lies in")
