"""The ledger layout: which accounts exist, their derived ids, and the transfer codes.

Money flows one way: city funding → a citizen's grant account → a provider's payable account → city payouts
(the SEPA transfer); what a grant leaves unspent at its end goes to the city's expired (breakage) account.
"""

from __future__ import annotations

from enum import IntEnum
from uuid import UUID, uuid5

from ledger import Account, AccountFlags, ShardedAccount

EUR = 978  # the ledger of euro cents (ISO 4217 numeric)
_NAMESPACE = UUID("0b8f5a3e-8f0c-4c3f-9a5e-6d1b2c3a4f50")
# Every trip of a busy provider credits its payable and every grant debits the city's funding: both are
# sharded so concurrent transactions lock different rows (see bench/mobility_api.py).
PROVIDER_SHARDS = 32
FUNDING_SHARDS = 8


class AccountCode(IntEnum):
    CITY_FUNDING = 1
    GRANT = 2
    PROVIDER_PAYABLE = 3
    CITY_EXPIRED = 4
    CITY_PAYOUTS = 5


class TransferCode(IntEnum):
    GRANT = 1
    TRIP = 2
    HOLD = 3
    REFUND = 4
    SETTLEMENT = 5
    EXPIRY = 6


def derived_id(*parts: object) -> UUID:
    """A stable id from names, so the same command always addresses the same account or transfer."""
    return uuid5(_NAMESPACE, "/".join(str(part) for part in parts))


def city_funding(tenant: str) -> ShardedAccount:
    return ShardedAccount(derived_id("city-funding", tenant), FUNDING_SHARDS)


def city_expired(tenant: str) -> UUID:
    return derived_id("city-expired", tenant)


def city_payouts(tenant: str) -> UUID:
    return derived_id("city-payouts", tenant)


def grant_account(grant_id: UUID) -> UUID:
    return derived_id("grant", grant_id)


def provider_payable(provider_id: UUID, shards: int = PROVIDER_SHARDS) -> ShardedAccount:
    return ShardedAccount(derived_id("provider", provider_id), shards)


def city_accounts(tenant: str) -> list[Account]:
    funding = Account(UUID(int=1), EUR, AccountCode.CITY_FUNDING, tenant=tenant, metadata={"role": "funding"})
    return [
        *city_funding(tenant).accounts(funding),
        Account(
            city_expired(tenant), EUR, AccountCode.CITY_EXPIRED, tenant=tenant, metadata={"role": "expired"}
        ),
        Account(
            city_payouts(tenant), EUR, AccountCode.CITY_PAYOUTS, tenant=tenant, metadata={"role": "payouts"}
        ),
    ]


def grant_account_record(grant_id: UUID, tenant: str) -> Account:
    """A grant's account may never go below zero: the ledger refuses overspending atomically."""
    return Account(
        grant_account(grant_id),
        EUR,
        AccountCode.GRANT,
        flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
        tenant=tenant,
        metadata={"grant": str(grant_id)},
    )


def provider_accounts(provider_id: UUID, tenant: str, shards: int) -> list[Account]:
    # No never-negative flag: a refund after settlement leaves the provider owing, netted at the next run.
    template = Account(
        UUID(int=1), EUR, AccountCode.PROVIDER_PAYABLE, tenant=tenant, metadata={"provider": str(provider_id)}
    )
    return provider_payable(provider_id, shards).accounts(template)
