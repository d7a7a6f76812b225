"""Request and response bodies of the incentives API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from incentives import domain


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CoinTypeIn(_In):
    code: str = Field(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    scope: domain.Scope = domain.Scope.LOCAL
    member_tenants: list[str] = Field(default_factory=list, max_length=50)
    rate_coins: int = Field(default=10, gt=0, le=1_000_000)
    rate_cents: int = Field(default=100, gt=0, le=1_000_000)
    expires_at: AwareDatetime | None = None


class CoinTypeOut(BaseModel):
    id: UUID
    code: str
    name: str
    issuer_tenant: str
    scope: str
    member_tenants: list[str]
    rate_coins: int
    rate_cents: int
    expires_at: datetime | None


class MerchantIn(_In):
    name: str = Field(min_length=1, max_length=200)
    kbo: str = Field(max_length=14)
    iban: str = Field(max_length=40)
    place: str = Field(default="", max_length=300)
    owner_subject: str = Field(min_length=1, max_length=200)
    coin_type_ids: list[UUID] = Field(min_length=1, max_length=20)


class MerchantOut(BaseModel):
    id: UUID
    tenant: str
    name: str
    kbo: str
    iban: str
    place: str
    coin_type_ids: list[UUID]


class RuleIn(_In):
    trigger: str = Field(
        min_length=1, max_length=200, description="an event type from the catalogue, or `claim`"
    )
    condition: str = Field(default="", max_length=1000)
    beneficiary_kind: Literal["citizen", "merchant"] = "citizen"
    beneficiary_field: str | None = Field(
        default=None, max_length=200, description="field path naming who earns; claims: the claimant"
    )
    reward_kind: domain.RewardKind = domain.RewardKind.FIXED
    reward_coins: int = Field(default=0, ge=0, le=1_000_000)
    percent_bps: int = Field(default=0, ge=0, le=10_000)
    base_field: str | None = Field(default=None, max_length=200)
    limit_window: domain.Window | None = None
    limit_coins: int | None = Field(default=None, gt=0, le=10**12)


class RuleOut(RuleIn):
    id: UUID


class CampaignIn(_In):
    name: str = Field(min_length=1, max_length=200)
    sponsor: str = Field(min_length=1, max_length=200)
    coin_type_id: UUID
    budget_coins: int = Field(gt=0, le=10**12)
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None
    audience_tenants: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="whose events count; empty: where the coin is accepted",
    )
    rules: list[RuleIn] = Field(min_length=1, max_length=20)


class CampaignOut(BaseModel):
    id: UUID
    tenant: str
    name: str
    sponsor: str
    coin_type_id: UUID
    budget_coins: int
    valid_from: datetime
    valid_until: datetime | None
    audience_tenants: list[str]
    status: str
    rules: list[RuleOut]


class CampaignReport(BaseModel):
    campaign_id: UUID
    name: str
    coin_code: str
    budget_coins: int
    issued: int
    issuances: int
    redeemed: int
    expired: int
    budget_left: int


class WalletBalance(BaseModel):
    coin_type_id: UUID
    coin_code: str
    coin_name: str
    wallet_id: UUID
    balance: int
    euro_cents: int


class HistoryEntry(BaseModel):
    transfer_id: UUID
    kind: str
    amount: int
    balance_after: int
    at: datetime


class QrRequest(_In):
    coin_type_id: UUID
    max_amount: int | None = Field(default=None, gt=0, le=10**9)


class QrOut(BaseModel):
    payload: str
    expires_at: datetime


class RedeemIn(_In):
    qr: str = Field(min_length=1, max_length=1000)
    merchant_id: UUID
    amount: int = Field(gt=0, le=10**9)


class RedemptionOut(BaseModel):
    redemption_id: UUID
    wallet_id: UUID
    coin_type_id: UUID
    amount: int
    refunded: int
    wallet_balance_after: int


class RefundIn(_In):
    amount: int = Field(gt=0, le=10**9)


class MerchantTransferIn(_In):
    to_merchant_id: UUID
    coin_type_id: UUID
    amount: int = Field(gt=0, le=10**9)
    transfer_id: UUID | None = Field(default=None, description="idempotency key")


class TransferOut(BaseModel):
    transfer_id: UUID
    amount: int
    balance_after: int


class ClaimIn(_In):
    campaign_id: UUID
    evidence: str = Field(min_length=1, max_length=2000)


class ClaimOut(BaseModel):
    id: UUID
    campaign_id: UUID
    citizen_id: str
    evidence: str
    status: str
    reason: str | None
    submitted_at: datetime


class ClaimDecision(_In):
    approve: bool
    reason: str = Field(default="", max_length=500)


LAST_DAY = date(9999, 12, 30)  # a period ends a day before the calendar does


class SettlementIn(_In):
    period_start: date = Field(le=LAST_DAY)
    period_end: date = Field(le=LAST_DAY)


class StatementLine(BaseModel):
    settlement_id: UUID
    merchant_id: UUID
    merchant_name: str
    coin_code: str
    coins: int
    amount_cents: int
    period_start: date
    period_end: date
    payment_information_id: str


class SettlementBatchOut(BaseModel):
    batch_id: UUID
    period_start: date
    period_end: date
    amount_cents: int
    statements: list[StatementLine]


class ExpiryIn(_In):
    coin_type_id: UUID


class ExpiryOut(BaseModel):
    wallets: int
    coins: int
