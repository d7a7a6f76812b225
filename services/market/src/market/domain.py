"""Pure market rules: plans, traders, subscriptions, applications, fees, allocation inputs and outputs."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum, StrEnum


class DomainError(ValueError):
    """A broken business rule; `field` names the offending input so the API can point at it."""

    code = "domain_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidPlan(DomainError):
    code = "invalid_plan"


class DuplicateStallNumber(InvalidPlan):
    code = "duplicate_stall_number"


class OverlappingStalls(InvalidPlan):
    code = "overlapping_stalls"


class UnknownStall(DomainError):
    code = "unknown_stall"


class InvalidKbo(DomainError):
    code = "invalid_kbo"


class InvalidApplication(DomainError):
    code = "invalid_application"


class TransferNotAllowed(DomainError):
    code = "transfer_not_allowed"


class NoticeTooShort(DomainError):
    code = "notice_too_short"


class StallFeature(StrEnum):
    FOOD = "food"
    EVI = "evi"
    ELECTRICITY = "electricity"
    WATER = "water"


class DailyPlaceMethod(StrEnum):
    PRE_REGISTRATION = "pre_registration"
    SEEDED_LOTTERY = "seeded_lottery"
    ARRIVAL_ORDER = "arrival_order"


class PreRegistrationOrder(StrEnum):
    SENIORITY = "seniority"
    LOTTERY = "lottery"


class CandidateGroup(IntEnum):
    """Priority groups of the candidate register for subscription vacancies (lower goes first)."""

    DISPLACED = 1
    EXTENSION = 2
    CHANGE_OF_PLACE = 3
    EXTERNAL = 4


class PlaceChange(StrEnum):
    ABOLISH = "abolish"
    MOVE = "move"


NOTICE_MONTHS = {PlaceChange.ABOLISH: 12, PlaceChange.MOVE: 6}
TRANSFER_LOCK_MONTHS = 12
# Distances are map metres; a little slack keeps rounding in drawn plans from reading as overlap.
OVERLAP_TOLERANCE_M = 0.01


@dataclass(frozen=True)
class Stall:
    number: str
    length_m: Decimal
    x: float
    y: float
    specialisation: str | None = None
    features: frozenset[StallFeature] = frozenset()

    @property
    def is_special(self) -> bool:
        return self.specialisation is not None or bool(self.features & {StallFeature.FOOD, StallFeature.EVI})


@dataclass(frozen=True)
class Obstacle:
    after_stall: str
    kind: str = "obstacle"


@dataclass(frozen=True)
class Row:
    name: str
    stalls: tuple[str, ...]
    obstacles: tuple[Obstacle, ...] = ()


@dataclass(frozen=True)
class MarketPlan:
    stalls: tuple[Stall, ...]
    rows: tuple[Row, ...]

    def stall(self, number: str) -> Stall:
        for stall in self.stalls:
            if stall.number == number:
                return stall
        raise UnknownStall("stall", f"no stall {number!r} on this plan")

    def segments(self) -> tuple[tuple[str, ...], ...]:
        """Maximal runs of mutually adjacent stalls: a row cut at each obstacle."""
        result: list[tuple[str, ...]] = []
        for row in self.rows:
            cuts = {obstacle.after_stall for obstacle in row.obstacles}
            current: list[str] = []
            for number in row.stalls:
                current.append(number)
                if number in cuts:
                    result.append(tuple(current))
                    current = []
            if current:
                result.append(tuple(current))
        return tuple(result)


def validate_plan(plan: MarketPlan) -> MarketPlan:
    """Raise a named error for the first structural problem of a plan, else return it unchanged."""
    seen: set[str] = set()
    for index, stall in enumerate(plan.stalls):
        if stall.number in seen:
            raise DuplicateStallNumber(f"stalls[{index}].number", f"stall {stall.number!r} appears twice")
        if stall.length_m <= 0:
            raise InvalidPlan(f"stalls[{index}].length_m", "a stall needs a positive length")
        seen.add(stall.number)
    placed: set[str] = set()
    for r, row in enumerate(plan.rows):
        for s, number in enumerate(row.stalls):
            where = f"rows[{r}].stalls[{s}]"
            if number not in seen:
                raise UnknownStall(where, f"row {row.name!r} lists unknown stall {number!r}")
            if number in placed:
                raise InvalidPlan(where, f"stall {number!r} is in more than one row place")
            placed.add(number)
        for o, obstacle in enumerate(row.obstacles):
            if obstacle.after_stall not in row.stalls:
                raise UnknownStall(
                    f"rows[{r}].obstacles[{o}].after_stall", "obstacle after a stall not in the row"
                )
    _check_overlaps(plan)
    return plan


def _check_overlaps(plan: MarketPlan) -> None:
    by_number = {stall.number: stall for stall in plan.stalls}
    positions: dict[tuple[float, float], str] = {}
    for index, stall in enumerate(plan.stalls):
        other = positions.setdefault((stall.x, stall.y), stall.number)
        if other != stall.number:
            raise OverlappingStalls(
                f"stalls[{index}]", f"stalls {other!r} and {stall.number!r} share a position"
            )
    for r, row in enumerate(plan.rows):
        for s in range(1, len(row.stalls)):
            before, after = by_number[row.stalls[s - 1]], by_number[row.stalls[s]]
            gap = math.hypot(after.x - before.x, after.y - before.y)
            if gap + OVERLAP_TOLERANCE_M < float(before.length_m):
                raise OverlappingStalls(
                    f"rows[{r}].stalls[{s}]", f"stall {after.number!r} overlaps stall {before.number!r}"
                )


def normalise_kbo(value: str, field: str = "kbo_number") -> str:
    """Return the ten digits of a valid KBO number written as `0xxx.xxx.xxx` or as digits."""
    digits = value.replace(".", "").replace(" ", "").strip()
    if len(digits) == 9 and digits.isdigit():
        digits = "0" + digits
    if len(digits) != 10 or not digits.isdigit():
        raise InvalidKbo(field, "a KBO number has 10 digits, written 0xxx.xxx.xxx")
    if digits[0] not in "01":
        raise InvalidKbo(field, "a KBO number starts with 0 or 1")
    if 97 - int(digits[:8]) % 97 != int(digits[8:]):
        raise InvalidKbo(field, "the KBO check digits (mod 97) do not match")
    return digits


def format_kbo(value: str) -> str:
    digits = normalise_kbo(value)
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


def is_valid_kbo(value: str) -> bool:
    try:
        normalise_kbo(value)
    except InvalidKbo:
        return False
    return True


@dataclass(frozen=True)
class Tariff:
    """Daily fee: per metre of stall length or per stall, plus electricity, all in euro cents."""

    per_metre_cents: int = 0
    per_stall_cents: int = 0
    electricity_cents: int = 0


def daily_fee(stalls: Sequence[Stall], tariff: Tariff, *, electricity: bool = False) -> int:
    metres = sum((stall.length_m for stall in stalls), Decimal(0))
    by_length = (metres * tariff.per_metre_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    extra = tariff.electricity_cents if electricity else 0
    return int(by_length) + tariff.per_stall_cents * len(stalls) + extra


@dataclass(frozen=True)
class Regulation:
    method: DailyPlaceMethod = DailyPlaceMethod.PRE_REGISTRATION
    pre_registration_order: PreRegistrationOrder = PreRegistrationOrder.SENIORITY
    release_time: time = time(8, 30)
    max_stalls_per_trader: int = 3
    quotas: Mapping[str, int] = field(default_factory=dict)
    tariff: Tariff = Tariff()


@dataclass(frozen=True)
class WeeklySchedule:
    weekdays: frozenset[int]  # 0 = Monday, as date.weekday()
    opens: time
    closes: time


@dataclass(frozen=True)
class SetUpWindow:
    starts: time
    ends: time


@dataclass(frozen=True)
class Market:
    id: str
    tenant: str
    name: str
    place: str
    schedule: WeeklySchedule
    setup: SetUpWindow
    regulation: Regulation
    plan: MarketPlan


def market_days(
    schedule: WeeklySchedule, start: date, end: date, closures: Collection[date] = ()
) -> list[date]:
    """The market's days from `start` to `end` inclusive, leaving out closures."""
    days = (start + timedelta(days=n) for n in range((end - start).days + 1))
    return [day for day in days if day.weekday() in schedule.weekdays and day not in closures]


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Trader:
    id: str
    kbo_number: str
    name: str
    products: tuple[str, ...] = ()
    specialisation: str | None = None
    insurance_valid_until: date | None = None
    food_registration: str | None = None
    staff: tuple[str, ...] = ()


def eligibility_problem(trader: Trader, day: date, needs: Collection[StallFeature] = ()) -> str | None:
    """Why a trader may not trade on `day`, or None when they may."""
    if not is_valid_kbo(trader.kbo_number):
        return "the KBO number is not valid"
    if trader.insurance_valid_until is None or trader.insurance_valid_until < day:
        return "no valid proof of liability insurance"
    if StallFeature.FOOD in needs and not trader.food_registration:
        return "selling food needs a food-safety registration"
    return None


@dataclass(frozen=True)
class Subscription:
    trader_id: str
    market_id: str
    stalls: tuple[str, ...]
    specialisation: str | None
    granted_on: date
    transferred_on: date | None = None


def transfer_subscription(subscription: Subscription, to: Trader, on: date) -> Subscription:
    """The subscription held by `to` after a transfer; the specialisation stays with the place."""
    normalise_kbo(to.kbo_number, "to.kbo_number")
    if subscription.transferred_on and on < add_months(subscription.transferred_on, TRANSFER_LOCK_MONTHS):
        raise TransferNotAllowed("on", "a transferred place cannot be transferred again within one year")
    if to.specialisation is not None and to.specialisation != subscription.specialisation:
        raise TransferNotAllowed("to.specialisation", "a transfer keeps the place's specialisation")
    return replace(subscription, trader_id=to.id, transferred_on=on)


def check_notice(change: PlaceChange, announced_on: date, effective_on: date) -> None:
    months = NOTICE_MONTHS[change]
    if effective_on < add_months(announced_on, months):
        raise NoticeTooShort(
            "effective_on", f"to {change.value} a place needs at least {months} months' notice"
        )


@dataclass(frozen=True)
class CandidateEntry:
    trader_id: str
    specialisation: str | None
    group: CandidateGroup
    registered_on: date


def candidate_queue(entries: Iterable[CandidateEntry], specialisation: str | None) -> list[CandidateEntry]:
    """The register for one specialisation in the order vacancies are offered."""
    wanted = [entry for entry in entries if entry.specialisation == specialisation]
    return sorted(wanted, key=lambda entry: (entry.group, entry.registered_on, entry.trader_id))


@dataclass(frozen=True)
class AbsencePeriod:
    trader_id: str
    starts: date
    ends: date


def is_absent(periods: Iterable[AbsencePeriod], trader_id: str, day: date) -> bool:
    return any(p.trader_id == trader_id and p.starts <= day <= p.ends for p in periods)


@dataclass(frozen=True)
class Application:
    trader_id: str
    market_day: date
    min_stalls: int = 1
    max_stalls: int = 1
    preferred_stalls: tuple[str, ...] = ()
    anywhere: bool = True
    needs: frozenset[StallFeature] = frozenset()
    submitted_at: datetime | None = None
    withdrawn_at: datetime | None = None
    wants_move: bool = False


def validate_application(application: Application, plan: MarketPlan, regulation: Regulation) -> Application:
    if application.min_stalls < 1:
        raise InvalidApplication("min_stalls", "at least one stall")
    if application.max_stalls < application.min_stalls:
        raise InvalidApplication("max_stalls", "the maximum is below the minimum")
    if application.max_stalls > regulation.max_stalls_per_trader:
        raise InvalidApplication(
            "max_stalls", f"at most {regulation.max_stalls_per_trader} stalls per trader"
        )
    known = {stall.number for stall in plan.stalls}
    duplicates = Counter(application.preferred_stalls)
    for index, number in enumerate(application.preferred_stalls):
        if number not in known:
            raise UnknownStall(f"preferred_stalls[{index}]", f"no stall {number!r} on this plan")
        if duplicates[number] > 1:
            raise InvalidApplication(f"preferred_stalls[{index}]", f"stall {number!r} is listed twice")
    return application


def withdraw(application: Application, at: datetime) -> Application:
    if application.withdrawn_at is not None:
        raise InvalidApplication("withdrawn_at", "the application was already withdrawn")
    return replace(application, withdrawn_at=at)


class RejectionReason(StrEnum):
    NOT_ELIGIBLE = "not_eligible"
    OWN_STALL_UNAVAILABLE = "own_stall_unavailable"
    CATEGORY_FULL = "category_full"
    PREFERENCES_UNAVAILABLE = "preferences_unavailable"
    NO_ADJACENT_RUN = "no_adjacent_run"
    MINIMUM_NOT_AVAILABLE = "minimum_not_available"
    MARKET_FULL = "market_full"


REJECTION_TEXT = {
    RejectionReason.NOT_ELIGIBLE: "You may not trade on this day",
    RejectionReason.OWN_STALL_UNAVAILABLE: "Your own stall is not available today and nothing else was free",
    RejectionReason.CATEGORY_FULL: "The maximum number of stalls for your specialisation is reached",
    RejectionReason.PREFERENCES_UNAVAILABLE: "None of your preferred stalls was available",
    RejectionReason.NO_ADJACENT_RUN: "Enough stalls were free, but not next to each other",
    RejectionReason.MINIMUM_NOT_AVAILABLE: "Fewer stalls were free than your minimum",
    RejectionReason.MARKET_FULL: "All suitable stalls were taken by traders with priority",
}


@dataclass(frozen=True)
class Rejection:
    code: RejectionReason
    text: str


@dataclass(frozen=True)
class DayRequest:
    """One present trader's claim on a market day: a subscription holder (own stalls) or an applicant."""

    trader_id: str
    priority_group: int = 4
    registered_on: date | None = None
    specialisation: str | None = None
    min_stalls: int = 1
    max_stalls: int = 1
    preferred_stalls: tuple[str, ...] = ()
    anywhere: bool = True
    needs: frozenset[StallFeature] = frozenset()
    own_stalls: tuple[str, ...] = ()
    wants_move: bool = False
    arrived_at: datetime | None = None
    ineligible_reason: str | None = None

    @property
    def is_holder(self) -> bool:
        return bool(self.own_stalls)


@dataclass(frozen=True)
class DayAllocationInput:
    plan: MarketPlan
    regulation: Regulation
    requests: tuple[DayRequest, ...]
    seed: int
    unavailable_stalls: frozenset[str] = frozenset()
    final: bool = False
    time_limit_s: float = 10.0


@dataclass(frozen=True)
class AllocationResult:
    assignments: Mapping[str, tuple[str, ...]]
    rejections: Mapping[str, Rejection]
    method: DailyPlaceMethod
    seed: int
    optimal: bool
    final: bool
    order: tuple[str, ...]
    placed_per_group: Mapping[int, int]
    stalls_given: int
    preference_score: int
    explanations: Mapping[str, str]
    solver: str = "cp-sat"


def preference_points(request: DayRequest, stalls: Iterable[str]) -> int:
    """How well a place meets the wishes: 10 for a first choice down to 1 from the tenth on, 0 for none.

    A place counts by its best preferred stall, so a trader with three stalls does not weigh three times.
    """
    rank = {number: index for index, number in enumerate(request.preferred_stalls)}
    return max((max(1, 10 - rank[number]) for number in stalls if number in rank), default=0)


def priority_order(requests: Sequence[DayRequest], regulation: Regulation, seed: int) -> tuple[str, ...]:
    """Trader ids in allocation order: holders, then priority group, then seniority, arrival or lottery."""
    ids = sorted(request.trader_id for request in requests)
    random.Random(seed).shuffle(ids)
    lottery = {trader_id: position for position, trader_id in enumerate(ids)}
    by_seniority = (
        regulation.method is DailyPlaceMethod.PRE_REGISTRATION
        and regulation.pre_registration_order is PreRegistrationOrder.SENIORITY
    )
    by_arrival = regulation.method is DailyPlaceMethod.ARRIVAL_ORDER

    def key(request: DayRequest) -> tuple[bool, int, float, int]:
        tie = 0.0
        if by_seniority and request.registered_on is not None:
            tie = float(request.registered_on.toordinal())
        elif by_seniority or (by_arrival and request.arrived_at is None):
            tie = math.inf
        elif by_arrival and request.arrived_at is not None:
            tie = request.arrived_at.timestamp()
        return (not request.is_holder, request.priority_group, tie, lottery[request.trader_id])

    return tuple(request.trader_id for request in sorted(requests, key=key))


HOLDER_GROUP = 1
APPLICANT_GROUP = 4


def requests_for_day(
    day: date,
    traders: Mapping[str, Trader],
    subscriptions: Iterable[Subscription],
    applications: Iterable[Application],
    *,
    absences: Iterable[AbsencePeriod] = (),
    priority_groups: Mapping[str, int] | None = None,
) -> tuple[DayRequest, ...]:
    """Who is present for a day: holders unless absent, applicants who applied and did not withdraw.

    A holder's application for the day asks for extra stalls or a move; a trader failing the checks on the day
    is still present, so that the allocation rejects them with the reason.
    """
    periods = tuple(absences)
    groups = priority_groups or {}
    applied = {a.trader_id: a for a in applications if a.market_day == day and a.withdrawn_at is None}
    held = {s.trader_id: s for s in subscriptions}
    present = [t for t in {*held, *applied} if t in traders and not is_absent(periods, t, day)]
    return tuple(_day_request(day, traders[t], held.get(t), applied.get(t), groups) for t in sorted(present))


def _day_request(
    day: date,
    trader: Trader,
    subscription: Subscription | None,
    application: Application | None,
    groups: Mapping[str, int],
) -> DayRequest:
    own = subscription.stalls if subscription else ()
    wish = application or Application(
        trader.id, day, min_stalls=max(1, len(own)), max_stalls=max(1, len(own))
    )
    return DayRequest(
        trader_id=trader.id,
        priority_group=HOLDER_GROUP if own else groups.get(trader.id, APPLICANT_GROUP),
        registered_on=subscription.granted_on if subscription else None,
        specialisation=trader.specialisation,
        min_stalls=wish.min_stalls,
        max_stalls=max(wish.max_stalls, len(own)),
        preferred_stalls=wish.preferred_stalls,
        anywhere=wish.anywhere,
        needs=wish.needs,
        own_stalls=own,
        wants_move=bool(own) and wish.wants_move,
        ineligible_reason=eligibility_problem(trader, day, wish.needs),
    )
