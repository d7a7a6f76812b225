"""Mobility-credit rules: schemes, pro-rated grants, the split of a fare into city and citizen share, caps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

LOCAL_TIME = ZoneInfo("Europe/Brussels")
_EARTH_RADIUS_M = 6_371_000.0


class Mode(StrEnum):
    BUS = "bus"
    TRAIN = "train"
    SHARED_BIKE = "shared_bike"
    CAR_SHARING = "car_sharing"
    TAXI = "taxi"
    BIKE_PARKING = "bike_parking"


class SchemeKind(StrEnum):
    ONE_OFF = "one_off"
    PERIODIC = "periodic"


class CapPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class MobilityCreditError(Exception):
    """A refused command; `code` is the stable machine-readable reason given to clients."""

    code = "mobility_credit_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(MobilityCreditError):
    code = "not_found"


class InvalidScheme(MobilityCreditError):
    code = "invalid_scheme"


class NotEligible(MobilityCreditError):
    code = "not_eligible"


class InsufficientBudget(MobilityCreditError):
    code = "insufficient_budget"


class CaptureExceedsHold(MobilityCreditError):
    code = "capture_exceeds_hold"


class HoldNotOpen(MobilityCreditError):
    code = "hold_not_open"


class HoldExpired(MobilityCreditError):
    code = "hold_expired"


class RefundExceedsTrip(MobilityCreditError):
    code = "refund_exceeds_trip"


class Conflict(MobilityCreditError):
    code = "conflict"


class IdempotencyConflict(MobilityCreditError):
    code = "idempotency_key_reused"


class InvalidAmount(MobilityCreditError):
    code = "invalid_amount"


class LedgerRejected(MobilityCreditError):
    code = "ledger_rejected"


@dataclass(frozen=True)
class ModeRule:
    """How much of a fare of one mode the city pays: a percentage, at most `max_per_trip_cents` a trip."""

    mode: Mode
    percent: int = 100
    max_per_trip_cents: int | None = None

    def city_share(self, fare_cents: int) -> int:
        share = fare_cents * self.percent // 100
        return share if self.max_per_trip_cents is None else min(share, self.max_per_trip_cents)


@dataclass(frozen=True)
class Area:
    """A circle around a point (WGS84), e.g. the station square."""

    lat: float
    lon: float
    radius_m: float

    def contains(self, lat: float, lon: float) -> bool:
        return distance_m(self.lat, self.lon, lat, lon) <= self.radius_m


@dataclass(frozen=True)
class Advantage:
    """A better rule for a mode at some places and times ("shared bikes: at most EUR 2 off, 16:00-18:00").

    Times are local (Europe/Brussels), `start` inclusive and `end` exclusive; no weekdays means every day
    (Monday = 0); without an area and place names it applies everywhere.
    """

    name: str
    rule: ModeRule
    start: time = time(0, 0)
    end: time = time(23, 59, 59, 999_999)
    weekdays: frozenset[int] = frozenset()
    area: Area | None = None
    place_names: frozenset[str] = frozenset()

    def applies(self, trip: TripRequest) -> bool:
        if trip.mode is not self.rule.mode:
            return False
        local = trip.consumed_at.astimezone(LOCAL_TIME)
        if self.weekdays and local.weekday() not in self.weekdays:
            return False
        if not self.start <= local.time().replace(tzinfo=None) < self.end:
            return False
        return self._at_place(trip)

    def _at_place(self, trip: TripRequest) -> bool:
        if self.area is None and not self.place_names:
            return True
        area, lat, lon = self.area, trip.lat, trip.lon
        if area is not None and lat is not None and lon is not None and area.contains(lat, lon):
            return True
        return trip.place_name is not None and trip.place_name.casefold() in {
            name.casefold() for name in self.place_names
        }


@dataclass(frozen=True)
class Cap:
    """At most `amount_cents` of city share per citizen per period, for one mode or (mode None) for all."""

    amount_cents: int
    period: CapPeriod
    mode: Mode | None = None


@dataclass(frozen=True)
class Scheme:
    """A city's budget scheme: a one-off premium or a periodic budget, with the rules of what it pays."""

    name: str
    kind: SchemeKind
    amount_cents: int
    valid_from: date
    valid_until: date | None = None
    period_months: int = 12
    expiry_months: int = 12
    rules: tuple[ModeRule, ...] = ()
    advantages: tuple[Advantage, ...] = ()
    caps: tuple[Cap, ...] = ()
    providers: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        check_scheme(self)

    def rule_for(self, mode: Mode) -> ModeRule | None:
        return next((rule for rule in self.rules if rule.mode is mode), None)

    def covers(self, mode: Mode, provider_id: str) -> bool:
        if self.rule_for(mode) is None:
            return False
        return not self.providers or provider_id in self.providers


def check_scheme(scheme: Scheme) -> None:
    if scheme.amount_cents <= 0:
        raise InvalidScheme("a scheme grants a positive amount")
    if not 1 <= scheme.period_months <= 120 or not 1 <= scheme.expiry_months <= 120:
        raise InvalidScheme("periods and expiry are 1 to 120 months")
    if scheme.valid_until is not None and scheme.valid_until < scheme.valid_from:
        raise InvalidScheme("valid_until is before valid_from")
    if not scheme.rules:
        raise InvalidScheme("a scheme pays for at least one mode")
    modes = [rule.mode for rule in scheme.rules]
    if len(set(modes)) != len(modes):
        raise InvalidScheme("one rule per mode")
    for rule in (*scheme.rules, *(a.rule for a in scheme.advantages)):
        if not 0 <= rule.percent <= 100 or (rule.max_per_trip_cents or 0) < 0:
            raise InvalidScheme("percentages are 0-100 and maxima are not negative")
    if any(cap.amount_cents < 0 for cap in scheme.caps):
        raise InvalidScheme("caps are not negative")


@dataclass(frozen=True)
class GrantTerms:
    """What a grant under a scheme gives: the (pro-rated) amount and the days it may be spent."""

    period_start: date
    valid_from: date
    expires_on: date
    amount_cents: int


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def add_months(day: date, months: int) -> date:
    index = month_index(day) + months
    return date(index // 12, index % 12 + 1, 1)


def grant_terms(scheme: Scheme, on: date) -> GrantTerms:
    """The grant a citizen joining on `on` receives.

    A periodic budget is pro-rated by whole months left in its period (the current month counts) and expires
    at the period's end; a one-off premium is paid in full and expires `expiry_months` later.
    """
    if on < scheme.valid_from or (scheme.valid_until is not None and on > scheme.valid_until):
        raise NotEligible(f"the scheme {scheme.name!r} is not open on {on.isoformat()}")
    if scheme.kind is SchemeKind.ONE_OFF:
        expires = _day_before(add_months(on.replace(day=1), scheme.expiry_months + 1))
        expires = min(expires, scheme.valid_until) if scheme.valid_until else expires
        return GrantTerms(scheme.valid_from, on, expires, scheme.amount_cents)
    first = scheme.valid_from.replace(day=1)
    elapsed = month_index(on) - month_index(first)
    period_start = add_months(first, elapsed - elapsed % scheme.period_months)
    next_period = add_months(period_start, scheme.period_months)
    months_left = month_index(next_period) - month_index(on)
    amount = scheme.amount_cents * months_left // scheme.period_months
    if amount <= 0:
        raise NotEligible("the pro-rated budget for the rest of the period is nothing")
    expires = _day_before(next_period)
    if scheme.valid_until is not None:
        expires = min(expires, scheme.valid_until)
    return GrantTerms(period_start, on, expires, amount)


def _day_before(day: date) -> date:
    return date.fromordinal(day.toordinal() - 1)


@dataclass(frozen=True)
class TripRequest:
    """A trip a provider asks the city to pay for (an OSLO `Consumptie`)."""

    provider_id: str
    mode: Mode
    fare_cents: int
    consumed_at: datetime
    place_name: str | None = None
    lat: float | None = None
    lon: float | None = None

    def __post_init__(self) -> None:
        if self.consumed_at.tzinfo is None:
            raise ValueError("trip times are timezone-aware")
        check_amount(self.fare_cents)


@dataclass(frozen=True)
class Split:
    """A fare divided: the city pays `city_cents` from the budget, the citizen pays the rest."""

    total_cents: int
    city_cents: int
    advantage: str | None = None

    @property
    def citizen_cents(self) -> int:
        return self.total_cents - self.city_cents


def check_amount(cents: int) -> None:
    if isinstance(cents, bool) or not isinstance(cents, int) or cents <= 0:
        raise InvalidAmount("amounts are positive integers of euro cents")


def split_fare(scheme: Scheme, trip: TripRequest, cap_room: dict[Cap, int] | None = None) -> Split:
    """The city's share of a fare: the best of the mode's rule and its applicable advantages, then the caps.

    `cap_room` gives, per cap of the scheme, what the citizen may still receive in the cap's current period;
    a cap limits the city's share (the citizen pays the rest), it never refuses the trip.
    """
    if not scheme.covers(trip.mode, trip.provider_id):
        raise NotEligible(f"the scheme {scheme.name!r} does not pay for {trip.mode.value} with this provider")
    rule = scheme.rule_for(trip.mode)
    assert rule is not None
    best, advantage = rule.city_share(trip.fare_cents), None
    for candidate in scheme.advantages:
        if candidate.applies(trip):
            share = candidate.rule.city_share(trip.fare_cents)
            if share > best:
                best, advantage = share, candidate.name
    for cap in applicable_caps(scheme, trip.mode):
        room = (cap_room or {}).get(cap, cap.amount_cents)
        best = min(best, max(room, 0))
    return Split(trip.fare_cents, best, advantage)


def applicable_caps(scheme: Scheme, mode: Mode) -> list[Cap]:
    return [cap for cap in scheme.caps if cap.mode is None or cap.mode is mode]


def period_key(period: CapPeriod, moment: datetime) -> str:
    """The cap window a moment falls in, in local time: `2026-11-26`, `2026-W48`, `2026-11`, `2026`."""
    local = moment.astimezone(LOCAL_TIME).date()
    if period is CapPeriod.DAY:
        return local.isoformat()
    if period is CapPeriod.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period is CapPeriod.MONTH:
        return f"{local.year}-{local.month:02d}"
    return str(local.year)


def cap_key(cap: Cap, moment: datetime) -> str:
    """The usage counter a cap reads and writes for a trip at `moment`."""
    return f"{cap.mode.value if cap.mode else '*'}:{cap.period.value}:{period_key(cap.period, moment)}"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(math.sqrt(h))


def refund_amount(city_share_cents: int, refunded_cents: int, requested: int | None) -> int:
    """The city share a refund returns to the budget: what was asked, at most what is left of the trip's."""
    left = city_share_cents - refunded_cents
    amount = left if requested is None else requested
    check_amount(amount)
    if amount > left:
        raise RefundExceedsTrip(f"only {left} cents of this trip's city share are left to refund")
    return amount


def capture_split(held_fare_cents: int, split: Split) -> Split:
    if split.total_cents > held_fare_cents:
        raise CaptureExceedsHold(
            f"the fare {split.total_cents} exceeds the {held_fare_cents} cents authorised by the hold"
        )
    return split


def valid_kbo(number: str) -> bool:
    """A KBO enterprise number: 10 digits, the last two are 97 minus the first eight mod 97."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) != 10:
        return False
    return 97 - int(digits[:8]) % 97 == int(digits[8:])


def valid_iban(iban: str) -> bool:
    """The IBAN mod-97 check; Belgian ones have 16 characters."""
    text = iban.replace(" ", "").upper()
    if len(text) < 15 or len(text) > 34 or not text.isalnum() or (text.startswith("BE") and len(text) != 16):
        return False
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1
