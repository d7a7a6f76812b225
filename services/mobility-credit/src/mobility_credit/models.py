"""Request and response bodies of the API, and the stored form of a scheme's definition."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from mobility_credit import domain

Cents = int


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModeRuleIn(Body):
    mode: domain.Mode
    percent: int = Field(default=100, ge=0, le=100)
    max_per_trip_cents: int | None = Field(default=None, ge=0)

    def to_domain(self) -> domain.ModeRule:
        return domain.ModeRule(self.mode, self.percent, self.max_per_trip_cents)


class AreaIn(Body):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=100_000)


class AdvantageIn(Body):
    name: str = Field(min_length=1, max_length=200)
    rule: ModeRuleIn
    start: time = time(0, 0)
    end: time = time(23, 59, 59, 999_999)
    weekdays: list[int] = Field(default_factory=list, description="Monday = 0; empty: every day")
    area: AreaIn | None = None
    place_names: list[str] = Field(default_factory=list)

    def to_domain(self) -> domain.Advantage:
        area = domain.Area(self.area.lat, self.area.lon, self.area.radius_m) if self.area else None
        return domain.Advantage(
            self.name,
            self.rule.to_domain(),
            self.start,
            self.end,
            frozenset(self.weekdays),
            area,
            frozenset(self.place_names),
        )


class CapIn(Body):
    amount_cents: Cents = Field(ge=0)
    period: domain.CapPeriod
    mode: domain.Mode | None = None


class SchemeIn(Body):
    """A scheme as the city defines it; stored as this JSON and turned into `domain.Scheme` when used."""

    name: str = Field(min_length=1, max_length=200)
    kind: domain.SchemeKind
    amount_cents: Cents = Field(gt=0)
    valid_from: date
    valid_until: date | None = None
    period_months: int = Field(default=12, ge=1, le=120)
    expiry_months: int = Field(default=12, ge=1, le=120)
    rules: list[ModeRuleIn] = Field(min_length=1)
    advantages: list[AdvantageIn] = Field(default_factory=list)
    caps: list[CapIn] = Field(default_factory=list)
    providers: list[UUID] = Field(default_factory=list, description="eligible providers; empty: all")

    def to_domain(self) -> domain.Scheme:
        return domain.Scheme(
            name=self.name,
            kind=self.kind,
            amount_cents=self.amount_cents,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            period_months=self.period_months,
            expiry_months=self.expiry_months,
            rules=tuple(rule.to_domain() for rule in self.rules),
            advantages=tuple(a.to_domain() for a in self.advantages),
            caps=tuple(domain.Cap(c.amount_cents, c.period, c.mode) for c in self.caps),
            providers=frozenset(str(p) for p in self.providers),
        )


class SchemeOut(BaseModel):
    id: UUID
    tenant: str
    definition: SchemeIn


class ProviderIn(Body):
    name: str = Field(min_length=1, max_length=200)
    kbo: str = Field(pattern=r"^0\d{3}\.?\d{3}\.?\d{3}$", description="KBO number, 0xxx.xxx.xxx")
    iban: str = Field(min_length=15, max_length=34)
    bic: str | None = Field(default=None, pattern=r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
    modes: list[domain.Mode] = Field(min_length=1)
    operator: str = Field(min_length=1, max_length=200, description="subject of the login acting for it")

    @model_validator(mode="after")
    def _checksums(self) -> ProviderIn:
        if not domain.valid_kbo(self.kbo):
            raise ValueError("kbo: the check digits do not match")
        if not domain.valid_iban(self.iban):
            raise ValueError("iban: the IBAN check fails")
        return self


class ProviderOut(BaseModel):
    id: UUID
    tenant: str
    name: str
    kbo: str
    iban: str
    bic: str | None
    modes: list[domain.Mode]


class GrantIn(Body):
    citizen_id: str = Field(min_length=1, max_length=200)
    on: date | None = Field(default=None, description="the day the citizen joins; default today")


class GrantOut(BaseModel):
    id: UUID
    scheme_id: UUID
    scheme_name: str
    citizen_id: str
    period_start: date
    valid_from: date
    expires_on: date
    amount_cents: Cents
    available_cents: Cents | None = None
    held_cents: Cents | None = None
    expired_cents: Cents | None = None


class PlaceIn(Body):
    name: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _named_or_located(self) -> PlaceIn:
        if self.name is None and (self.lat is None or self.lon is None):
            raise ValueError("a place has a name or both lat and lon")
        return self


class TripIn(Body):
    """A provider's request to pay a trip (OSLO `Consumptie`: consumptieTijdstip, consumptieType, waarde)."""

    citizen_id: str = Field(min_length=1, max_length=200)
    mode: domain.Mode
    place: PlaceIn
    consumed_at: AwareDatetime
    total_cents: Cents = Field(gt=0, le=1_000_000, description="the fare in euro cents")


class HoldIn(Body):
    citizen_id: str = Field(min_length=1, max_length=200)
    mode: domain.Mode
    place: PlaceIn
    consumed_at: AwareDatetime
    estimated_total_cents: Cents = Field(gt=0, le=1_000_000, description="the most the fare may be")
    expires_in_s: int | None = Field(default=None, ge=1, le=7 * 86_400)


class CaptureIn(Body):
    total_cents: Cents = Field(gt=0, le=1_000_000, description="the real fare, at most the estimate")


class RefundIn(Body):
    amount_cents: Cents | None = Field(
        default=None, gt=0, description="city share to return to the budget; default all that is left"
    )


class PlaceOut(BaseModel):
    name: str | None
    lat: float | None
    lon: float | None


class TripOut(BaseModel):
    id: UUID
    provider_id: UUID
    citizen_id: str
    scheme_id: UUID
    mode: domain.Mode
    place: PlaceOut
    consumed_at: datetime
    total_cents: Cents
    city_share_cents: Cents
    citizen_share_cents: Cents
    refunded_cents: Cents
    advantage: str | None
    hold_id: UUID | None
    paid_at: datetime


class HoldOut(BaseModel):
    id: UUID
    provider_id: UUID
    citizen_id: str
    mode: domain.Mode
    estimated_total_cents: Cents
    amount_cents: Cents
    status: Literal["open", "captured", "voided", "expired"]
    trip_id: UUID | None
    expires_at: datetime


class RefundOut(BaseModel):
    id: UUID
    trip_id: UUID
    amount_cents: Cents
    created_at: datetime


class WalletOut(BaseModel):
    citizen_id: str
    tenant: str
    available_cents: Cents
    held_cents: Cents
    grants: list[GrantOut]


class HistoryItem(BaseModel):
    kind: Literal["grant", "trip", "refund", "hold", "expiry"]
    at: datetime
    amount_cents: Cents = Field(description="effect on the budget: positive in, negative out")
    description: str
    trip: TripOut | None = None


class StatementOut(BaseModel):
    citizen_id: str
    month: str
    opening_cents: Cents
    granted_cents: Cents
    spent_cents: Cents
    refunded_cents: Cents
    expired_cents: Cents
    closing_cents: Cents
    items: list[HistoryItem]


class ModeTotalOut(BaseModel):
    mode: domain.Mode
    trips: int
    amount_cents: Cents


class SettlementOut(BaseModel):
    id: UUID
    run_id: UUID
    provider_id: UUID
    provider_name: str
    period_start: date
    period_end: date
    trips: int
    amount_cents: Cents
    per_mode: list[ModeTotalOut]
    end_to_end_id: str
    created_at: datetime


class SettlementRunIn(Body):
    period_start: date
    period_end: date = Field(description="last day included")
    execution_date: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SettlementRunIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class SettlementRunOut(BaseModel):
    id: UUID
    tenant: str
    period_start: date
    period_end: date
    message_id: str
    total_cents: Cents
    transactions: int
    settlements: list[SettlementOut]


class SweepOut(BaseModel):
    expired_holds: int
    expired_grants: int
    expired_cents: Cents


class SchemeReport(BaseModel):
    scheme_id: UUID
    name: str
    grants: int
    granted_cents: Cents
    available_cents: Cents
    held_cents: Cents
    spent_cents: Cents
    expired_cents: Cents


class ReportOut(BaseModel):
    tenant: str
    schemes: list[SchemeReport]
    per_mode: list[ModeTotalOut]
    granted_cents: Cents
    spent_cents: Cents
    owed_to_providers_cents: Cents
    paid_out_cents: Cents
    expired_cents: Cents
    citizens_available_cents: Cents
    citizens_held_cents: Cents
    balanced: bool = Field(description="granted = citizens' budgets + held + owed + paid out + expired")
