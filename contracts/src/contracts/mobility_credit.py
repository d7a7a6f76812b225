"""Events of mobility-credit: budgets, paid trips (OSLO `Consumptie`), holds, expiry, settlement."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event

SERVICE = "mobility-credit"
BUDGETS = "mobility-credit.budgets"
TRIPS = "mobility-credit.trips"
SETTLEMENTS = "mobility-credit.settlements"

Mode = Literal["bus", "train", "shared_bike", "car_sharing", "taxi", "bike_parking"]
"""The OSLO `Mobiliteitsdienst` kinds a scheme can pay for (`consumptieType` of a `Consumptie`)."""

Currency = Literal["EUR"]
CitizenId = str
"""The citizen's pseudonymous id: the identity provider's opaque subject, never a national register number."""


class Place(BaseModel):
    """Where a trip started (OSLO `Locatie`): coordinates (WGS84) and/or a name such as a stop or station."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class BudgetGranted(Event, service=SERVICE, topic=BUDGETS, key="citizen_id"):
    """The city granted a citizen a budget under a scheme (OSLO `Mobiliteitsbudget`)."""

    grant_id: UUID
    citizen_id: CitizenId = Field(min_length=1, max_length=200)
    scheme_id: UUID
    scheme_name: str = Field(max_length=200)
    amount_cents: int = Field(gt=0, description="waarde, in euro cents")
    currency: Currency = "EUR"
    valid_from: date = Field(description="begindatum")
    expires_on: date | None = Field(
        default=None, description="vervaldatum (the budget is usable up to this day)"
    )
    granted_at: AwareDatetime


class TripPaid(Event, service=SERVICE, topic=TRIPS, key="citizen_id"):
    """A trip was paid from a citizen's budget (OSLO Mobiliteitsbudget `Consumptie`).

    `total_cents` is the fare (`waarde`); the city pays `city_share_cents` from the budget and the citizen
    pays `citizen_share_cents` to the provider directly; the two add up to `total_cents`.
    """

    trip_id: UUID
    citizen_id: CitizenId = Field(min_length=1, max_length=200)
    provider_id: UUID
    provider_name: str = Field(max_length=200)
    scheme_id: UUID
    mode: Mode = Field(description="consumptieType")
    place: Place
    consumed_at: AwareDatetime = Field(description="consumptieTijdstip: when the trip started")
    total_cents: int = Field(ge=0, description="waarde: the fare, in euro cents")
    city_share_cents: int = Field(ge=0)
    citizen_share_cents: int = Field(ge=0)
    currency: Currency = "EUR"
    hold_id: UUID | None = Field(default=None, description="the hold this payment captured, if any")
    paid_at: AwareDatetime


class TripRefunded(Event, service=SERVICE, topic=TRIPS, key="citizen_id"):
    """A paid trip was refunded (wholly or partly) by a new transfer back to the citizen's budget."""

    refund_id: UUID
    trip_id: UUID
    citizen_id: CitizenId = Field(min_length=1, max_length=200)
    provider_id: UUID
    amount_cents: int = Field(gt=0, description="city share returned to the budget, in euro cents")
    currency: Currency = "EUR"
    refunded_at: AwareDatetime


class HoldPlaced(Event, service=SERVICE, topic=TRIPS, key="citizen_id"):
    """A provider reserved budget for a trip whose fare is not known yet (taxi, car sharing)."""

    hold_id: UUID
    citizen_id: CitizenId = Field(min_length=1, max_length=200)
    provider_id: UUID
    scheme_id: UUID
    mode: Mode
    place: Place
    consumed_at: AwareDatetime
    amount_cents: int = Field(gt=0, description="the city share reserved, in euro cents")
    currency: Currency = "EUR"
    expires_at: AwareDatetime


class HoldCaptured(Event, service=SERVICE, topic=TRIPS, key="citizen_id"):
    """A hold was settled with the real fare; the paid trip follows as `TripPaid` with the same `hold_id`."""

    hold_id: UUID
    trip_id: UUID
    citizen_id: CitizenId = Field(min_length=1, max_length=200)
    provider_id: UUID
    captured_cents: int = Field(ge=0, description="city share taken from the hold")
    released_cents: int = Field(ge=0, description="rest of the hold returned to the budget")
    currency: Currency = "EUR"
    captured_at: AwareDatetime


class HoldVoided(Event, service=SERVICE, topic=TRIPS, key="citizen_id"):
    """A hold was cancelled by the provider; the whole reserved amount is available again."""

    hold_id: UUID
    citizen_id: CitizenId = Field(min_length=1, max_length=200)
    provider_id: UUID
    released_cents: int = Field(ge=0)
    currency: Currency = "EUR"
    voided_at: AwareDatetime


class HoldExpired(Event, service=SERVICE, topic=TRIPS, key="citizen_id"):
    """A hold passed its timeout uncaptured: the amount is available again, the hold can never be captured."""

    hold_id: UUID
    citizen_id: CitizenId = Field(min_length=1, max_length=200)
    provider_id: UUID
    released_cents: int = Field(ge=0)
    currency: Currency = "EUR"
    expired_at: AwareDatetime


class CreditExpired(Event, service=SERVICE, topic=BUDGETS, key="citizen_id"):
    """What was left of a citizen's budget under a scheme moved to the city's expiry (breakage) account."""

    expiry_id: UUID
    citizen_id: CitizenId = Field(min_length=1, max_length=200)
    scheme_id: UUID
    amount_cents: int = Field(ge=0)
    currency: Currency = "EUR"
    expired_on: date
    expired_at: AwareDatetime


class ModeTotal(BaseModel):
    """The trips of one mode in a settlement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode
    trips: int = Field(ge=0)
    amount_cents: int = Field(description="city share paid minus refunds, in euro cents")


class ProviderSettled(Event, service=SERVICE, topic=SETTLEMENTS, key="provider_id"):
    """The city settled a provider for a period: the amount owed is paid out by SEPA credit transfer."""

    settlement_id: UUID
    provider_id: UUID
    provider_name: str = Field(max_length=200)
    period_start: date
    period_end: date = Field(description="last day included")
    trips: int = Field(ge=0)
    amount_cents: int = Field(ge=0, description="paid out, in euro cents")
    currency: Currency = "EUR"
    per_mode: list[ModeTotal]
    payment_information_id: str = Field(max_length=35, description="PmtInfId of the pain.001 payment")
    settled_at: AwareDatetime
