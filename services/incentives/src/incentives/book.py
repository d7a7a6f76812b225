"""The ledger layout of coins: one ledger per coin type, its accounts and transfer codes.

Per coin type: an issuer account (the source of all coins), campaign budgets (never negative), citizen
wallets and merchant accounts (never negative), a settled account (coins repaid in euro) and a breakage
account (expired coins). Hence issued = held by citizens + held by merchants + settled + expired. Everything
runs on the caller's connection, inside its transaction.
"""

from __future__ import annotations

import enum
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from incentives import domain
from ledger import Account, AccountFlags, Balance, LedgerSession, Transfer, TransferFlags, TransferResult

NEVER_NEGATIVE = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS


class AccountCode(enum.IntEnum):
    ISSUER = 1
    BUDGET = 2
    WALLET = 3
    MERCHANT = 4
    SETTLED = 5
    BREAKAGE = 6


class TransferCode(enum.IntEnum):
    FUND = 1
    ISSUE = 2
    REDEEM = 3
    REFUND = 4
    MERCHANT_TRANSFER = 5
    SETTLE = 6
    EXPIRE = 7


async def session_of(session: AsyncSession) -> LedgerSession:
    """A ledger session on the unit of work's connection: ledger rows commit with the service's rows."""
    return LedgerSession(await session.connection())


async def open_accounts(ledger: LedgerSession, accounts: list[Account]) -> None:
    results = await ledger.create_accounts(accounts)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"ledger accounts refused: {failed}")


def account(account_id: UUID, coin: domain.CoinType, code: AccountCode, tenant: str) -> Account:
    flags = NEVER_NEGATIVE if code in _NEVER_NEGATIVE_CODES else AccountFlags.NONE
    return Account(id=account_id, ledger=coin.ledger, code=int(code), flags=flags, tenant=tenant)


_NEVER_NEGATIVE_CODES = {AccountCode.BUDGET, AccountCode.WALLET, AccountCode.MERCHANT}


async def open_coin_type(ledger: LedgerSession, coin: domain.CoinType) -> None:
    tenant = coin.issuer_tenant
    await open_accounts(
        ledger,
        [
            account(domain.issuer_account(coin.id), coin, AccountCode.ISSUER, tenant),
            account(domain.settled_account(coin.id), coin, AccountCode.SETTLED, tenant),
            account(domain.breakage_account(coin.id), coin, AccountCode.BREAKAGE, tenant),
        ],
    )


async def open_budget(ledger: LedgerSession, campaign_id: UUID, coin: domain.CoinType, tenant: str) -> None:
    await open_accounts(
        ledger, [account(domain.budget_account(campaign_id), coin, AccountCode.BUDGET, tenant)]
    )


async def move(
    ledger: LedgerSession,
    transfer_id: UUID,
    coin: domain.CoinType,
    debit: UUID,
    credit: UUID,
    amount: int,
    code: TransferCode,
    *,
    flags: TransferFlags = TransferFlags.NONE,
) -> TransferResult:
    transfer = Transfer(
        transfer_id,
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        ledger=coin.ledger,
        code=int(code),
        flags=flags,
    )
    [result] = await ledger.create_transfers([transfer])
    return result


async def available(ledger: LedgerSession, account_id: UUID) -> int:
    return (await ledger.get_balance(account_id)).available


async def net(ledger: LedgerSession, account_ids: list[UUID]) -> Balance:
    return await ledger.get_balances(account_ids)
