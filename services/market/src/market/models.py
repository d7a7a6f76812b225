"""Request and response bodies of the market API (pydantic), shared by the routes and the handlers."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Feature = Literal["food", "evi", "electricity", "water"]
StallNumber = str


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StallIn(_In):
    number: StallNumber = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")
    length_m: Decimal = Field(gt=0, le=50, max_digits=6, decimal_places=2)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    specialisation: str | None = Field(default=None, max_length=100)
    features: list[Feature] = Field(default_factory=list)


class RowIn(_In):
    name: str = Field(min_length=1, max_length=50)
    stalls: list[StallIn] = Field(min_length=1, max_length=500)
    obstacles_after: list[StallNumber] = Field(
        default_factory=list, description="stall numbers after which adjacency is broken"
    )


class PlanIn(_In):
    rows: list[RowIn] = Field(min_length=1, max_length=300)


class TariffIn(_In):
    per_metre_cents: int = Field(default=0, ge=0, le=100_000)
    per_stall_cents: int = Field(default=0, ge=0, le=1_000_000)
    electricity_cents: int = Field(default=0, ge=0, le=100_000)


class RegulationIn(_In):
    method: Literal["pre_registration", "seeded_lottery", "arrival_order"] = "pre_registration"
    pre_registration_order: Literal["seniority", "lottery"] = "seniority"
    release_time: time = time(8, 30)
    max_stalls_per_trader: int = Field(default=3, ge=1, le=10)
    quotas: dict[str, int] = Field(default_factory=dict, description="maximum stalls per specialisation")
    tariff: TariffIn = TariffIn()


class PlaceIn(_In):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=300)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class MarketIn(_In):
    name: str = Field(min_length=1, max_length=200)
    place: PlaceIn
    weekdays: list[int] = Field(min_length=1, max_length=7, description="0 = Monday")
    opens: time
    closes: time
    setup_starts: time
    setup_ends: time
    timezone: str = "Europe/Brussels"
    regulation: RegulationIn = RegulationIn()
    plan: PlanIn


class MarketOut(BaseModel):
    id: UUID
    tenant: str
    name: str
    place: PlaceIn
    weekdays: list[int]
    opens: str
    closes: str
    setup_starts: str
    setup_ends: str
    timezone: str
    regulation: RegulationIn
    stall_count: int


class MarketDetail(MarketOut):
    plan: PlanIn


class DaysIn(_In):
    start: date
    end: date
    closures: list[date] = Field(default_factory=list)


class CancelIn(_In):
    reason: str = Field(min_length=1, max_length=300)


class MarketDayOut(BaseModel):
    id: UUID
    market_id: UUID
    market_name: str
    date: date
    status: str
    opens_at: datetime
    closes_at: datetime
    setup_starts_at: datetime
    setup_ends_at: datetime
    release_at: datetime


class TraderIn(_In):
    kbo_number: str = Field(min_length=9, max_length=14, description="0xxx.xxx.xxx")
    name: str = Field(min_length=1, max_length=200)
    products: list[str] = Field(default_factory=list, max_length=50)
    specialisation: str | None = Field(default=None, max_length=100)
    insurance_valid_until: date | None = None
    food_registration: str | None = Field(default=None, max_length=100)
    staff: list[str] = Field(default_factory=list, max_length=20)
    open_data: bool = Field(
        default=False,
        description="agree that the name, products and stalls of this trader appear in the city's open data",
    )


class TraderOut(BaseModel):
    id: UUID
    kbo_number: str
    name: str
    products: list[str]
    specialisation: str | None
    insurance_valid_until: date | None
    food_registration: str | None
    staff: list[str]
    open_data: bool
    registered_at: datetime


class SubscriptionIn(_In):
    trader_id: UUID
    stalls: list[StallNumber] = Field(min_length=1, max_length=10)
    granted_on: date


class TransferIn(_In):
    to_trader_id: UUID
    on: date


class EndSubscriptionIn(_In):
    ends_on: date
    reason: Literal["given_up", "place_abolished", "revoked"] = "given_up"
    announced_on: date | None = Field(default=None, description="needed when the place is abolished")


class SubscriptionOut(BaseModel):
    id: UUID
    market_id: UUID
    trader_id: UUID
    stalls: list[str]
    specialisation: str | None
    granted_on: date
    transferred_on: date | None
    ends_on: date | None


class AbsenceIn(_In):
    starts: date
    ends: date


class ApplicationIn(_In):
    min_stalls: int = Field(default=1, ge=1, le=10)
    max_stalls: int = Field(default=1, ge=1, le=10)
    preferred_stalls: list[StallNumber] = Field(default_factory=list, max_length=50, description="best first")
    anywhere: bool = True
    needs: list[Feature] = Field(default_factory=list)
    wants_move: bool = False


class ApplicationOut(BaseModel):
    id: UUID
    market_day_id: UUID
    market_date: date
    trader_id: UUID
    min_stalls: int
    max_stalls: int
    preferred_stalls: list[str]
    anywhere: bool
    needs: list[str]
    wants_move: bool
    submitted_at: datetime
    withdrawn_at: datetime | None


class AllocationIn(_In):
    final: bool = Field(default=False, description="false: a dry concept run; true: the published allocation")
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="lottery seed; drawn when absent")
    solver: Literal["cp-sat", "greedy"] = "cp-sat"
    time_limit_s: float | None = Field(default=None, gt=0, le=60)


class AssignmentOut(BaseModel):
    trader_id: UUID
    trader_name: str
    stalls: list[str]
    row: str
    holder: bool
    explanation: str


class RejectionOut(BaseModel):
    trader_id: UUID
    trader_name: str
    reason_code: str
    reason_text: str
    explanation: str


class AllocationOut(BaseModel):
    id: UUID
    market_day_id: UUID
    round: str
    final: bool
    method: str
    seed: int
    solver: str
    optimal: bool
    seconds: float
    stalls_given: int
    preference_score: int
    assignments: list[AssignmentOut]
    rejections: list[RejectionOut]
    created_at: datetime


class MyDayOut(BaseModel):
    """A trader's own outcome for a market day."""

    market_day_id: UUID
    market_id: UUID
    market_name: str
    market_date: date
    status: Literal["assigned", "rejected", "released"]
    assignment_id: UUID | None = None
    stalls: list[str] = Field(default_factory=list)
    row: str | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    explanation: str
    setup_starts_at: datetime
    setup_ends_at: datetime
    checked_in_at: datetime | None = None


class CheckInCodeOut(BaseModel):
    assignment_id: UUID
    token: str
    expires_at: datetime
    svg_path: str
    png_path: str


class ScanIn(_In):
    token: str = Field(min_length=10, max_length=500)


class CheckInOut(BaseModel):
    assignment_id: UUID
    trader_id: UUID
    trader_name: str
    stalls: list[str]
    checked_in_at: datetime
    already_checked_in: bool


class WalkInIn(_In):
    trader_id: UUID
    arrived_at: AwareDatetime | None = Field(
        default=None, description="for markets allocating by order of arrival"
    )
    min_stalls: int = Field(default=1, ge=1, le=10)
    max_stalls: int = Field(default=1, ge=1, le=10)
    preferred_stalls: list[StallNumber] = Field(default_factory=list, max_length=50)
    anywhere: bool = True
    needs: list[Feature] = Field(default_factory=list)


class ReleaseIn(_In):
    walk_ins: list[WalkInIn] = Field(default_factory=list, max_length=500)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class FeeLineOut(BaseModel):
    description: str
    unit: str
    quantity_hundredths: int
    unit_price_cents: int
    amount_cents: int


class InvoiceOut(BaseModel):
    id: UUID
    number: str
    trader_id: UUID
    trader_name: str
    market_day_id: UUID
    market_date: date
    lines: list[FeeLineOut]
    total_cents: int
    currency: Literal["EUR"] = "EUR"
    due_on: date
    issued_at: datetime


class AttendanceLine(BaseModel):
    trader_id: UUID
    trader_name: str
    stalls: list[str]
    holder: bool
    status: Literal["present", "no_show", "expected", "released"]
    checked_in_at: datetime | None


class AttendanceOut(BaseModel):
    market_day_id: UUID
    market_date: date
    assigned: int
    present: int
    no_shows: int
    released: int
    traders: list[AttendanceLine]


class PublicStall(BaseModel):
    number: str
    row: str
    lat: float
    lon: float
    trader_name: str
    products: list[str]
    specialisation: str | None


class PublicDayOut(BaseModel):
    market_day_id: UUID
    market_name: str
    market_date: date
    place: PlaceIn
    opens_at: datetime
    closes_at: datetime
    allocated: bool
    stalls: list[PublicStall]


class PublicMarketOut(BaseModel):
    id: UUID
    tenant: str
    name: str
    place: PlaceIn
    weekdays: list[int]
    opens: str
    closes: str
    stall_count: int


class TraderAttendance(BaseModel):
    trader_id: UUID
    trader_name: str
    assigned_days: int
    present_days: int
    no_show_days: int


class AttendanceReportOut(BaseModel):
    """Attendance over a period: per market day and per trader (no-shows count after the release time)."""

    market_id: UUID
    start: date
    end: date
    days: list[AttendanceOut]
    traders: list[TraderAttendance]


class CandidateIn(_In):
    trader_id: UUID
    priority_group: Literal[1, 2, 3, 4] = Field(
        default=4, description="1 displaced holder, 2 extension, 3 change of place, 4 external candidate"
    )
    registered_on: date


class CandidateOut(BaseModel):
    """A place in the chronological candidate register of a market's subscription vacancies."""

    position: int
    trader_id: UUID
    trader_name: str
    specialisation: str | None
    priority_group: int
    registered_on: date
