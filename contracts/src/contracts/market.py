"""Events of the market service: traders, subscriptions, market days, applications, allocations, fees."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event

SERVICE = "market"
TRADERS = "market.traders"
SUBSCRIPTIONS = "market.subscriptions"
MARKET_DAYS = "market.market-days"
APPLICATIONS = "market.applications"
FEES = "market.fees"

Currency = Literal["EUR"]
StallFeature = Literal["food", "evi", "electricity", "water"]
DailyPlaceMethod = Literal["pre_registration", "seeded_lottery", "arrival_order"]
RejectionCode = Literal[
    "not_eligible",
    "own_stall_unavailable",
    "category_full",
    "preferences_unavailable",
    "no_adjacent_run",
    "minimum_not_available",
    "market_full",
]
KboNumber = str
"""Ten digits of the enterprise's KBO number, without dots (the last two are 97 - first eight mod 97)."""


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MarketPlace(_Part):
    """Where a market is held (OSLO `Adresvoorstelling` and a WGS84 point)."""

    name: str = Field(max_length=200, description="e.g. Kolonel Dusartplein")
    address: str = Field(max_length=300, description="free-form, e.g. 'Kolonel Dusartplein, 3500 Hasselt'")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class AssignedStall(_Part):
    """One stall of an assignment, with its place on the map so deliveries can find it."""

    number: str = Field(max_length=20)
    row: str = Field(max_length=50)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    length_cm: int = Field(gt=0)
    features: list[StallFeature] = Field(default_factory=list)


class StallAssignment(_Part):
    """The contiguous run of stalls one trader got for the day."""

    trader_id: UUID
    kbo_number: KboNumber = Field(pattern=r"^[01][0-9]{9}$")
    trader_name: str = Field(max_length=200)
    stall_numbers: list[str] = Field(min_length=1)
    row: str = Field(max_length=50, description="the row of the run (a run never spans rows)")
    lat: float = Field(ge=-90, le=90, description="middle of the run")
    lon: float = Field(ge=-180, le=180, description="middle of the run")
    stalls: list[AssignedStall] = Field(min_length=1)
    holder: bool = Field(description="a subscription holder on (or moved from) their own stalls")
    explanation: str = Field(default="", max_length=1000)


class AllocationRejection(_Part):
    """A present trader who got no stall, with the one reason why."""

    trader_id: UUID
    reason_code: RejectionCode
    reason_text: str = Field(max_length=500)
    explanation: str = Field(default="", max_length=1000)


class FeeLine(_Part):
    description: str = Field(max_length=200)
    unit: Literal["stall", "metre", "connection"]
    quantity_hundredths: int = Field(ge=0, description="the quantity times 100 (6.5 metres is 650)")
    unit_price_cents: int = Field(ge=0, description="per whole unit")
    amount_cents: int = Field(ge=0)


class TraderRegistered(Event, service=SERVICE, topic=TRADERS, key="trader_id"):
    """An enterprise was registered as a trader on the municipality's markets (OSLO `Handelszaak`)."""

    trader_id: UUID
    kbo_number: KboNumber = Field(pattern=r"^[01][0-9]{9}$")
    name: str = Field(max_length=200)
    products: list[str] = Field(default_factory=list)
    specialisation: str | None = Field(default=None, max_length=100)
    registered_at: AwareDatetime
    open_data: bool = Field(
        default=False, description="the trader agreed to appear in open data (name, products, stalls)"
    )


class TraderProfileUpdated(Event, service=SERVICE, topic=TRADERS, key="trader_id"):
    """A trader changed their profile: what they sell, and whether they appear in open data."""

    trader_id: UUID
    name: str = Field(max_length=200)
    products: list[str] = Field(default_factory=list)
    specialisation: str | None = Field(default=None, max_length=100)
    open_data: bool = Field(description="the trader agrees to appear in open data (name, products, stalls)")
    updated_at: AwareDatetime


class SubscriptionGranted(Event, service=SERVICE, topic=SUBSCRIPTIONS, key="subscription_id"):
    """A trader got a subscription place (abonnement) on a market: the same stalls every market day."""

    subscription_id: UUID
    market_id: UUID
    trader_id: UUID
    stall_numbers: list[str] = Field(min_length=1)
    specialisation: str | None = Field(default=None, max_length=100)
    granted_on: date
    granted_at: AwareDatetime


class SubscriptionTransferred(Event, service=SERVICE, topic=SUBSCRIPTIONS, key="subscription_id"):
    """A subscription moved to another enterprise; the specialisation stays and it is locked for a year."""

    subscription_id: UUID
    market_id: UUID
    from_trader_id: UUID
    to_trader_id: UUID
    to_kbo_number: KboNumber = Field(pattern=r"^[01][0-9]{9}$")
    transferred_on: date
    locked_until: date = Field(description="no new transfer before this day")
    transferred_at: AwareDatetime


class SubscriptionEnded(Event, service=SERVICE, topic=SUBSCRIPTIONS, key="subscription_id"):
    """A subscription ended (given up, place abolished after notice, or revoked)."""

    subscription_id: UUID
    market_id: UUID
    trader_id: UUID
    ends_on: date
    reason: Literal["given_up", "place_abolished", "revoked"]
    ended_at: AwareDatetime


class MarketDayScheduled(Event, service=SERVICE, topic=MARKET_DAYS, key="market_day_id", public=True):
    """A market will be held on a day (OSLO `Gebeurtenis` with its `Tijdschema`)."""

    market_day_id: UUID
    market_id: UUID
    market_name: str = Field(max_length=200)
    market_date: date
    place: MarketPlace
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    setup_starts_at: AwareDatetime
    setup_ends_at: AwareDatetime
    release_at: AwareDatetime = Field(description="unoccupied subscription places become daily places")
    scheduled_at: AwareDatetime


class MarketDayCancelled(Event, service=SERVICE, topic=MARKET_DAYS, key="market_day_id", public=True):
    """A scheduled market day will not be held (a closure)."""

    market_day_id: UUID
    market_id: UUID
    market_date: date
    reason: str = Field(max_length=300)
    cancelled_at: AwareDatetime


class ApplicationSubmitted(Event, service=SERVICE, topic=APPLICATIONS, key="market_day_id"):
    """A trader applied for a daily place (or extra stalls, or a move) on a market day."""

    application_id: UUID
    market_day_id: UUID
    market_id: UUID
    trader_id: UUID
    market_date: date
    min_stalls: int = Field(ge=1)
    max_stalls: int = Field(ge=1)
    preferred_stalls: list[str] = Field(default_factory=list, description="ranked, best first")
    anywhere: bool = True
    needs: list[StallFeature] = Field(default_factory=list)
    submitted_at: AwareDatetime


class ApplicationWithdrawn(Event, service=SERVICE, topic=APPLICATIONS, key="market_day_id"):
    """A trader withdrew an application before the final allocation."""

    application_id: UUID
    market_day_id: UUID
    trader_id: UUID
    withdrawn_at: AwareDatetime


class StallsAllocated(Event, service=SERVICE, topic=MARKET_DAYS, key="market_day_id"):
    """The final allocation of a market day (first round, or the release round for walk-ins).

    Every present trader is in exactly one of `assignments` or `rejections`. The place and the set-up window
    travel here so that logistics can deliver goods to a stall.
    """

    allocation_id: UUID
    market_day_id: UUID
    market_id: UUID
    market_name: str = Field(max_length=200)
    market_date: date
    place: MarketPlace
    setup_starts_at: AwareDatetime
    setup_ends_at: AwareDatetime
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    round: Literal["first", "release"]
    method: DailyPlaceMethod
    seed: int = Field(description="the lottery seed: the same input and seed give the same result")
    solver: Literal["cp-sat", "greedy"]
    optimal: bool
    assignments: list[StallAssignment]
    rejections: list[AllocationRejection]
    allocated_at: AwareDatetime


class TraderCheckedIn(Event, service=SERVICE, topic=MARKET_DAYS, key="market_day_id"):
    """The market master scanned a trader's check-in code at the stall."""

    market_day_id: UUID
    market_id: UUID
    trader_id: UUID
    stall_numbers: list[str] = Field(min_length=1)
    checked_in_at: AwareDatetime


class StallReleased(Event, service=SERVICE, topic=MARKET_DAYS, key="market_day_id"):
    """Stalls became free for the day's release round (absent holder, no-show or withdrawal)."""

    market_day_id: UUID
    market_id: UUID
    trader_id: UUID
    stall_numbers: list[str] = Field(min_length=1)
    reason: Literal["absent_holder", "no_show", "withdrawn"]
    released_at: AwareDatetime


class FeeInvoiced(Event, service=SERVICE, topic=FEES, key="trader_id"):
    """A trader was invoiced the daily fee (standgeld) for a market day."""

    invoice_id: UUID
    invoice_number: str = Field(max_length=40)
    trader_id: UUID
    kbo_number: KboNumber = Field(pattern=r"^[01][0-9]{9}$")
    market_id: UUID
    market_day_id: UUID
    market_date: date
    lines: list[FeeLine] = Field(min_length=1)
    total_cents: int = Field(ge=0)
    currency: Currency = "EUR"
    due_on: date
    invoiced_at: AwareDatetime
