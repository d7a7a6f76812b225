"""Events of incentives: campaigns (OSLO `Stimulansaanbod`), coins issued and spent, claims, settlement."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from contracts.base import Event

SERVICE = "incentives"
CAMPAIGNS = "incentives.campaigns"
COINS = "incentives.coins"
CLAIMS = "incentives.claims"
SETTLEMENTS = "incentives.settlements"

Currency = Literal["EUR"]
RewardKind = Literal["fixed", "percentage"]
"""OSLO `beloningtype`: a fixed number of coins, or a percentage of an amount in the trigger event."""

BeneficiaryKind = Literal["citizen", "merchant"]
PartyId = str
"""A citizen's pseudonymous id (the identity provider's opaque subject) or a merchant's id, as text."""


class CampaignLaunched(Event, service=SERVICE, topic=CAMPAIGNS, key="campaign_id", public=True):
    """A campaign started rewarding (OSLO `Stimulansaanbod`).

    OSLO mapping: `issuer_tenant` is `aanbieder`, `sponsor` is `sponsor`, `reward_kind` is `beloningtype`,
    `conditions` are the `criteriumvereiste`, `valid_from`/`valid_until` the `geldigheidsperiode`.
    """

    campaign_id: UUID
    name: str = Field(max_length=200)
    issuer_tenant: str = Field(max_length=64, description="aanbieder: NIS code of the issuing municipality")
    sponsor: str = Field(max_length=200, description="sponsor")
    coin_type_id: UUID
    coin_code: str = Field(max_length=40)
    budget_coins: int = Field(ge=0, description="the campaign budget, in coins")
    triggers: list[str] = Field(description="event types or `claim` that earn coins")
    conditions: list[str] = Field(description="criteriumvereiste: one condition expression per rule")
    reward_kind: RewardKind = Field(description="beloningtype of the first rule")
    valid_from: AwareDatetime = Field(description="geldigheidsperiode: start")
    valid_until: AwareDatetime | None = Field(default=None, description="geldigheidsperiode: end")
    launched_at: AwareDatetime


class CampaignEnded(Event, service=SERVICE, topic=CAMPAIGNS, key="campaign_id", public=True):
    """A campaign stopped rewarding: ended by an admin, its period over, or its budget spent."""

    campaign_id: UUID
    reason: Literal["ended", "expired", "budget_spent"]
    budget_left_coins: int = Field(ge=0)
    ended_at: AwareDatetime


class CoinsIssued(Event, service=SERVICE, topic=COINS, key="beneficiary_id"):
    """A rule rewarded a citizen or merchant (OSLO `Stimulansconsumptie` with its `gratificatie`).

    OSLO mapping: `beneficiary_id` is `consument`, `trigger_event_id` the `bekrachtiging` (what proves the
    behaviour), `amount` with `coin_code` the `Beloning` as a `Bedrag` (`waarde`, `valuta`).
    """

    issuance_id: UUID
    campaign_id: UUID
    rule_id: UUID
    coin_type_id: UUID
    coin_code: str = Field(max_length=40)
    beneficiary_kind: BeneficiaryKind
    beneficiary_id: PartyId = Field(min_length=1, max_length=200, description="consument")
    amount: int = Field(gt=0, description="waarde, in coins")
    trigger_event_id: str = Field(max_length=200, description="bekrachtiging: the event or claim id")
    trigger_event_type: str = Field(max_length=200)
    issued_at: AwareDatetime


class CoinsRedeemed(Event, service=SERVICE, topic=COINS, key="wallet_id"):
    """A merchant took coins from a citizen's wallet in payment (OSLO `Transactie`, `waarde` in coins)."""

    redemption_id: UUID
    wallet_id: UUID
    coin_type_id: UUID
    coin_code: str = Field(max_length=40)
    merchant_id: UUID
    amount: int = Field(gt=0, description="waarde, in coins")
    redeemed_at: AwareDatetime


class CoinsTransferred(Event, service=SERVICE, topic=COINS, key="from_id"):
    """Coins moved without an issuance: a merchant refunded a citizen or passed coins on to a merchant."""

    transfer_id: UUID
    reason: Literal["refund", "merchant_transfer"]
    coin_type_id: UUID
    coin_code: str = Field(max_length=40)
    from_id: PartyId = Field(min_length=1, max_length=200)
    to_id: PartyId = Field(min_length=1, max_length=200)
    amount: int = Field(gt=0, description="waarde, in coins")
    transferred_at: AwareDatetime


class ClaimSubmitted(Event, service=SERVICE, topic=CLAIMS, key="claim_id"):
    """A citizen claimed a reward with evidence (e.g. a school's scan of a bike ride to school)."""

    claim_id: UUID
    campaign_id: UUID
    citizen_id: PartyId = Field(min_length=1, max_length=200, description="consument")
    evidence: str = Field(max_length=2000)
    submitted_at: AwareDatetime


class ClaimApproved(Event, service=SERVICE, topic=CLAIMS, key="claim_id"):
    """A city admin or a trusted scanner approved a claim (OSLO `bekrachtiging`); coins follow."""

    claim_id: UUID
    campaign_id: UUID
    citizen_id: PartyId = Field(min_length=1, max_length=200)
    approved_by: str = Field(max_length=200)
    approved_at: AwareDatetime


class ClaimRejected(Event, service=SERVICE, topic=CLAIMS, key="claim_id"):
    """A claim was refused, with the reason shown to the citizen."""

    claim_id: UUID
    campaign_id: UUID
    citizen_id: PartyId = Field(min_length=1, max_length=200)
    reason: str = Field(max_length=500)
    rejected_by: str = Field(max_length=200)
    rejected_at: AwareDatetime


class MerchantSettled(Event, service=SERVICE, topic=SETTLEMENTS, key="merchant_id"):
    """The city repaid a merchant's coins of one coin type in euro for a period (a pain.001 payment)."""

    settlement_id: UUID
    merchant_id: UUID
    merchant_kbo: str = Field(max_length=12)
    coin_type_id: UUID
    coin_code: str = Field(max_length=40)
    period_start: date
    period_end: date = Field(description="last day included")
    coins: int = Field(gt=0)
    amount_cents: int = Field(ge=0, description="waarde, in euro cents at the coin's rate")
    currency: Currency = "EUR"
    payment_information_id: str = Field(max_length=35, description="PmtInfId of the pain.001 payment")
    settled_at: AwareDatetime


class CoinsExpiryNoticed(Event, service=SERVICE, topic=COINS, key="wallet_id"):
    """A citizen was told that unused coins of a type will expire at `expires_at`."""

    notice_id: UUID
    wallet_id: UUID
    citizen_id: PartyId = Field(min_length=1, max_length=200)
    coin_type_id: UUID
    coin_code: str = Field(max_length=40)
    amount: int = Field(gt=0, description="coins that would expire if unused")
    expires_at: AwareDatetime
    noticed_at: AwareDatetime


class CoinsExpired(Event, service=SERVICE, topic=COINS, key="wallet_id"):
    """Unused coins moved from a citizen's wallet to the coin type's breakage account; nothing is deleted."""

    expiry_id: UUID
    wallet_id: UUID
    citizen_id: PartyId = Field(min_length=1, max_length=200)
    coin_type_id: UUID
    coin_code: str = Field(max_length=40)
    amount: int = Field(gt=0)
    expired_at: AwareDatetime
