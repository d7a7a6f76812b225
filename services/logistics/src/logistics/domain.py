"""Pure logistics rules: hubs, fleet, access zones, orders, plans, stop outcomes and their named errors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class LogisticsError(Exception):
    """Base of every logistics domain error."""


class InvalidField(LogisticsError):
    """A field of the input breaks a rule; `field` names it (dotted path)."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidTimeWindow(InvalidField):
    code = "invalid_time_window"


class InvalidCapacity(InvalidField):
    code = "invalid_capacity"


class InvalidPolygon(InvalidField):
    code = "invalid_polygon"


class InvalidLocation(InvalidField):
    code = "invalid_location"


class OutsideServiceArea(InvalidField):
    code = "outside_service_area"


class UnknownReference(InvalidField):
    code = "unknown_reference"


class VehicleKind(StrEnum):
    VAN = "van"
    ELECTRIC_VAN = "electric_van"
    CARGO_BIKE = "cargo_bike"


@dataclass(frozen=True)
class GeoPoint:
    lat: float
    lon: float

    def check(self, field: str) -> None:
        if not (math.isfinite(self.lat) and math.isfinite(self.lon)):
            raise InvalidLocation(field, "coordinates must be finite numbers")
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise InvalidLocation(field, "latitude must be within ±90 and longitude within ±180")


@dataclass(frozen=True)
class TimeWindow:
    """A closed interval of aware datetimes; for a stop it bounds the start of service."""

    start: datetime
    end: datetime

    def check(self, field: str) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidTimeWindow(field, "datetimes must carry a time zone")
        if self.end < self.start:
            raise InvalidTimeWindow(field, "window ends before it starts")

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


def check_windows(windows: Sequence[TimeWindow], field: str) -> None:
    for i, window in enumerate(windows):
        window.check(f"{field}[{i}]")


@dataclass(frozen=True)
class SpeedProfile:
    """How fast a kind of vehicle moves through town; `osrm_profile` names the road network to ask for."""

    name: str
    speed_kmh: float
    osrm_profile: str = "driving"


DEFAULT_PROFILES: Mapping[VehicleKind, SpeedProfile] = {
    VehicleKind.VAN: SpeedProfile("van", 28.0),
    VehicleKind.ELECTRIC_VAN: SpeedProfile("electric_van", 28.0),
    VehicleKind.CARGO_BIKE: SpeedProfile("cargo_bike", 16.0, "cycling"),
}


@dataclass(frozen=True)
class Hub:
    id: str
    name: str
    location: GeoPoint
    opening_hours: tuple[TimeWindow, ...] = ()

    def check(self, field: str) -> None:
        self.location.check(f"{field}.location")
        check_windows(self.opening_hours, f"{field}.opening_hours")


@dataclass(frozen=True)
class Vehicle:
    id: str
    kind: VehicleKind
    capacity_kg: float
    capacity_m3: float
    shift: TimeWindow
    start_hub: str
    end_hub: str
    cost_per_km_cents: int = 0
    cost_per_hour_cents: int = 0
    gross_weight_kg: float = 0.0
    refrigerated: bool = False
    profile: SpeedProfile | None = None

    @property
    def speed_profile(self) -> SpeedProfile:
        return self.profile or DEFAULT_PROFILES[self.kind]

    def check(self, field: str, hubs: Mapping[str, Hub]) -> None:
        if not self.capacity_kg > 0:
            raise InvalidCapacity(f"{field}.capacity_kg", "a vehicle needs a positive weight capacity")
        if not self.capacity_m3 > 0:
            raise InvalidCapacity(f"{field}.capacity_m3", "a vehicle needs a positive volume capacity")
        if self.speed_profile.speed_kmh <= 0:
            raise InvalidField(f"{field}.profile.speed_kmh", "speed must be positive")
        self.shift.check(f"{field}.shift")
        for name in ("start_hub", "end_hub"):
            if getattr(self, name) not in hubs:
                raise UnknownReference(f"{field}.{name}", f"no hub {getattr(self, name)!r}")


@dataclass(frozen=True)
class Polygon:
    """A GeoJSON polygon: rings of (lon, lat) positions, the outer boundary first, then the holes."""

    rings: tuple[tuple[tuple[float, float], ...], ...]

    def contains(self, point: GeoPoint) -> bool:
        inside = _ring_contains(self.rings[0], point.lon, point.lat)
        return inside and not any(_ring_contains(hole, point.lon, point.lat) for hole in self.rings[1:])


@dataclass(frozen=True)
class Area:
    """One or more polygons (a GeoJSON Polygon or MultiPolygon)."""

    polygons: tuple[Polygon, ...]

    def contains(self, point: GeoPoint) -> bool:
        return any(polygon.contains(point) for polygon in self.polygons)


def _ring_contains(ring: Sequence[tuple[float, float]], x: float, y: float) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def area_from_geojson(data: Any, field: str) -> Area:
    """Parse and validate a GeoJSON Polygon, MultiPolygon or a Feature holding one; raise InvalidPolygon."""
    if isinstance(data, Mapping) and data.get("type") == "Feature":
        return area_from_geojson(data.get("geometry"), f"{field}.geometry")
    if not isinstance(data, Mapping) or data.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidPolygon(field, "expected a GeoJSON Polygon or MultiPolygon")
    coordinates = data.get("coordinates")
    if not isinstance(coordinates, list) or not coordinates:
        raise InvalidPolygon(f"{field}.coordinates", "coordinates must be a non-empty list")
    if data["type"] == "Polygon":
        return Area((_polygon(coordinates, f"{field}.coordinates"),))
    return Area(tuple(_polygon(p, f"{field}.coordinates[{i}]") for i, p in enumerate(coordinates)))


def _polygon(rings: Any, field: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise InvalidPolygon(field, "a polygon needs at least its outer ring")
    return Polygon(tuple(_ring(ring, f"{field}[{i}]") for i, ring in enumerate(rings)))


def _ring(ring: Any, field: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise InvalidPolygon(field, "a linear ring needs at least four positions")
    positions = tuple(_position(p, f"{field}[{i}]") for i, p in enumerate(ring))
    if positions[0] != positions[-1]:
        raise InvalidPolygon(field, "a linear ring must end where it starts")
    if abs(_signed_area(positions)) < 1e-14:
        raise InvalidPolygon(field, "the ring encloses no area")
    if _self_intersects(positions):
        raise InvalidPolygon(field, "the ring crosses itself")
    return positions


def _position(position: Any, field: str) -> tuple[float, float]:
    ok = isinstance(position, list | tuple) and len(position) in (2, 3)
    if not ok or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in position):
        raise InvalidPolygon(field, "a position is [longitude, latitude]")
    lon, lat = float(position[0]), float(position[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidPolygon(field, "longitude must be within ±180 and latitude within ±90")
    return lon, lat


def _signed_area(ring: Sequence[tuple[float, float]]) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring)) / 2


def _self_intersects(ring: Sequence[tuple[float, float]]) -> bool:
    edges = list(itertools.pairwise(ring))
    n = len(edges)
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def _segments_cross(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float], d: tuple[float, float]
) -> bool:
    def orient(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    d1, d2, d3, d4 = orient(c, d, a), orient(c, d, b), orient(a, b, c), orient(a, b, d)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True
    return any(
        o == 0 and _on_segment(p, q, r)
        for o, p, q, r in ((d1, c, d, a), (d2, c, d, b), (d3, a, b, c), (d4, a, b, d))
    )


def _on_segment(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> bool:
    return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])


@dataclass(frozen=True)
class AccessRule:
    """A vehicle kind may enter the zone, during `windows` only, or at any time when `windows` is empty."""

    kind: VehicleKind
    windows: tuple[TimeWindow, ...] = ()


@dataclass(frozen=True)
class AccessZone:
    id: str
    name: str
    area: Area
    rules: tuple[AccessRule, ...]
    max_weight_kg: float | None = None

    def check(self, field: str) -> None:
        for i, rule in enumerate(self.rules):
            check_windows(rule.windows, f"{field}.rules[{i}].windows")

    def rule_for(self, vehicle: Vehicle) -> AccessRule | None:
        """The rule letting this vehicle in, or None when its kind or weight keeps it out."""
        if self.max_weight_kg is not None and vehicle.gross_weight_kg > self.max_weight_kg:
            return None
        return next((rule for rule in self.rules if rule.kind == vehicle.kind), None)

    def admits(self, vehicle: Vehicle, start: datetime, end: datetime) -> bool:
        """Whether the vehicle may stand in the zone from `start` to `end` (a whole stop)."""
        rule = self.rule_for(vehicle)
        if rule is None:
            return False
        return not rule.windows or any(w.start <= start and end <= w.end for w in rule.windows)


@dataclass(frozen=True)
class ShopAddress:
    address: str
    location: GeoPoint
    address_uri: str | None = None


@dataclass(frozen=True)
class MarketStall:
    market_day_id: str
    stall_id: str
    location: GeoPoint


Recipient = ShopAddress | MarketStall


@dataclass(frozen=True)
class HubPickup:
    """The goods wait at a hub; a vehicle starting there loads them before it leaves."""

    hub_id: str


@dataclass(frozen=True)
class SupplierPickup:
    """The goods are collected at a supplier on the way, by the vehicle that delivers them."""

    name: str
    location: GeoPoint
    windows: tuple[TimeWindow, ...] = ()
    service_s: int = 300


Pickup = HubPickup | SupplierPickup


@dataclass(frozen=True)
class Order:
    id: str
    shipper: str
    recipient: Recipient
    windows: tuple[TimeWindow, ...]
    weight_kg: float
    volume_m3: float
    pickup: Pickup
    service_s: int = 180
    priority: int = 1
    cold_chain: bool = False

    @property
    def location(self) -> GeoPoint:
        return self.recipient.location

    def check(self, field: str, hubs: Mapping[str, Hub]) -> None:
        self.location.check(f"{field}.recipient.location")
        if not self.windows:
            raise InvalidTimeWindow(f"{field}.windows", "an order needs at least one delivery window")
        check_windows(self.windows, f"{field}.windows")
        if self.weight_kg < 0 or self.volume_m3 < 0:
            raise InvalidCapacity(f"{field}.weight_kg", "weight and volume cannot be negative")
        if self.service_s < 0:
            raise InvalidField(f"{field}.service_s", "service time cannot be negative")
        if not 0 <= self.priority <= 3:
            raise InvalidField(f"{field}.priority", "priority runs from 0 (low) to 3 (urgent)")
        if isinstance(self.pickup, HubPickup) and self.pickup.hub_id not in hubs:
            raise UnknownReference(f"{field}.pickup.hub_id", f"no hub {self.pickup.hub_id!r}")
        if isinstance(self.pickup, SupplierPickup):
            self.pickup.location.check(f"{field}.pickup.location")
            check_windows(self.pickup.windows, f"{field}.pickup.windows")


class Objective(StrEnum):
    """What the planner minimises after serving as many orders as it can, by priority."""

    DISTANCE = "distance"
    COST = "cost"
    VEHICLES_THEN_DISTANCE = "vehicles_then_distance"
    VEHICLES_THEN_COST = "vehicles_then_cost"


@dataclass(frozen=True)
class PlanningRequest:
    """Everything one planning run of a tenant's day or wave needs."""

    tenant: str
    origin: datetime
    hubs: tuple[Hub, ...]
    vehicles: tuple[Vehicle, ...]
    zones: tuple[AccessZone, ...]
    orders: tuple[Order, ...]
    service_area: Area | None = None
    objective: Objective = Objective.VEHICLES_THEN_DISTANCE

    def hub(self, hub_id: str) -> Hub:
        return next(h for h in self.hubs if h.id == hub_id)

    def validate(self) -> None:
        """Raise the first named error found, naming the field."""
        if self.origin.tzinfo is None:
            raise InvalidTimeWindow("origin", "the planning origin must carry a time zone")
        hubs = {hub.id: hub for hub in self.hubs}
        for i, hub in enumerate(self.hubs):
            hub.check(f"hubs[{i}]")
        for i, vehicle in enumerate(self.vehicles):
            vehicle.check(f"vehicles[{i}]", hubs)
        for i, zone in enumerate(self.zones):
            zone.check(f"zones[{i}]")
        for i, order in enumerate(self.orders):
            order.check(f"orders[{i}]", hubs)
            if self.service_area is not None and not self.service_area.contains(order.location):
                raise OutsideServiceArea(f"orders[{i}].recipient.location", "outside every reachable area")

    def zones_at(self, point: GeoPoint) -> tuple[AccessZone, ...]:
        return tuple(zone for zone in self.zones if zone.area.contains(point))


class StopKind(StrEnum):
    PICKUP = "pickup"
    DELIVERY = "delivery"


@dataclass(frozen=True)
class PlannedStop:
    order_id: str
    kind: StopKind
    location: GeoPoint
    arrival: datetime
    service_start: datetime
    departure: datetime
    load_kg: float
    load_m3: float
    completed: bool = False


@dataclass(frozen=True)
class Route:
    """One vehicle's trip; `load_kg`/`load_m3` on each stop are the load on board after it."""

    vehicle_id: str
    start_hub: str
    end_hub: str
    departure: datetime
    arrival: datetime
    stops: tuple[PlannedStop, ...]
    distance_m: int
    duration_s: int
    start_load_kg: float = 0.0
    start_load_m3: float = 0.0
    start_location: GeoPoint | None = None


class UnassignedReason(StrEnum):
    NO_ALLOWED_VEHICLE = "no_allowed_vehicle"
    CAPACITY = "capacity"
    TIME_WINDOW_UNREACHABLE = "time_window_unreachable"
    NO_VEHICLE_AT_HUB = "no_vehicle_at_hub"
    FLEET_EXHAUSTED = "fleet_exhausted"
    STALL_NOT_ALLOCATED = "stall_not_allocated"


@dataclass(frozen=True)
class UnassignedOrder:
    order_id: str
    reason: UnassignedReason
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    routes: tuple[Route, ...]
    unassigned: tuple[UnassignedOrder, ...]
    objective_value: int = 0

    def route_of(self, vehicle_id: str) -> Route | None:
        return next((r for r in self.routes if r.vehicle_id == vehicle_id), None)

    @property
    def distance_m(self) -> int:
        return sum(r.distance_m for r in self.routes)


class StopStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"


class FailureReason(StrEnum):
    RECIPIENT_ABSENT = "recipient_absent"
    REFUSED = "refused"
    DAMAGED = "damaged"
    NO_ACCESS = "no_access"
    OTHER = "other"


@dataclass(frozen=True)
class StopOutcome:
    order_id: str
    kind: StopKind
    status: StopStatus
    at: datetime
    reason: FailureReason | None = None
    proof: str | None = None

    def __post_init__(self) -> None:
        if (self.status is StopStatus.FAILED) != (self.reason is not None):
            raise InvalidField("reason", "a failed stop needs a reason and a done stop has none")


@dataclass(frozen=True)
class VehicleState:
    """Where a vehicle is during the day: re-planning starts it here, carrying `onboard` orders."""

    vehicle_id: str
    location: GeoPoint
    available_at: datetime
    onboard: tuple[str, ...] = ()
    broken_down: bool = False


@dataclass(frozen=True)
class ReplanRequest:
    request: PlanningRequest
    previous: Plan
    outcomes: tuple[StopOutcome, ...] = ()
    states: tuple[VehicleState, ...] = field(default=())

    def finished(self) -> set[tuple[str, StopKind]]:
        return {(o.order_id, o.kind) for o in self.outcomes}
