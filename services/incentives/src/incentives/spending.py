"""Spending coins: wallets, one-time QR payloads, redemption, refunds, merchant-to-merchant transfers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import incentives as events
from eventbus import UnitOfWork, UnitOfWorkFactory
from incentives import book, domain, models, store
from ledger import LedgerSession
from servicekit.auth import Principal


async def wallet(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[models.WalletBalance]:
    w, t = store.wallets, store.coin_types
    query = (
        sa.select(w.c.account_id, t)
        .join(t, t.c.id == w.c.coin_type_id)
        .where(w.c.citizen_id == principal.subject)
        .order_by(t.c.code)
    )
    async with uow_factory() as uow:
        ledger = await book.session_of(uow.session)
        out = []
        for row in (await uow.session.execute(query)).all():
            coin = store.coin_type_of(row)
            balance = await book.available(ledger, row.account_id)
            out.append(
                models.WalletBalance(
                    coin_type_id=coin.id,
                    coin_code=coin.code,
                    coin_name=coin.name,
                    wallet_id=row.account_id,
                    balance=balance,
                    euro_cents=coin.to_cents(balance),
                )
            )
        return out


async def history(
    uow_factory: UnitOfWorkFactory, principal: Principal, coin_type_id: UUID
) -> list[models.HistoryEntry]:
    account_id = domain.wallet_account(principal.subject, coin_type_id)
    async with uow_factory() as uow:
        ledger = await book.session_of(uow.session)
        entries = await ledger.get_account_history(account_id)
    out = []
    for entry in entries[-200:]:
        kind = book.TransferCode(entry.transfer.code).name.lower()
        amount = entry.effect.credits_posted - entry.effect.debits_posted
        assert entry.transfer.timestamp is not None
        out.append(
            models.HistoryEntry(
                transfer_id=entry.transfer.id,
                kind=kind,
                amount=amount,
                balance_after=entry.balance.net_posted,
                at=entry.transfer.timestamp,
            )
        )
    return out


async def make_qr(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: models.QrRequest, secret: bytes, ttl_s: int
) -> models.QrOut:
    """A one-time payload for the citizen's wallet of a coin type, valid for `ttl_s` seconds."""
    account_id = domain.wallet_account(principal.subject, body.coin_type_id)
    async with uow_factory() as uow:
        found = await uow.session.execute(
            sa.select(store.wallets.c.account_id).where(store.wallets.c.account_id == account_id)
        )
        if found.first() is None:
            raise domain.NotFound("no wallet of this coin type")
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl_s)
    claims = domain.QrClaims(account_id, body.coin_type_id, uuid4(), expires_at, body.max_amount)
    return models.QrOut(payload=domain.sign_qr(secret, claims), expires_at=expires_at)


async def owned_merchant(
    session: AsyncSession, principal: Principal, merchant_id: UUID, *, lock: bool = False
) -> Any:
    merchant = await store.load_row(session, store.merchants, merchant_id, "merchant")
    if merchant.owner_subject != principal.subject or merchant.tenant != principal.tenant:
        raise domain.NotFound("no such merchant")
    return merchant


def accepts(merchant: Any, coin: domain.CoinType) -> None:
    if str(coin.id) not in merchant.coin_type_ids or not coin.accepted_in(merchant.tenant):
        raise domain.CoinNotAccepted(f"{merchant.name} does not accept {coin.code}")


async def _move(
    ledger: LedgerSession,
    transfer_id: UUID,
    coin: domain.CoinType,
    debit: UUID,
    credit: UUID,
    amount: int,
    code: book.TransferCode,
) -> bool:
    """Move coins; False when this transfer happened before; InsufficientCoins when the payer lacks them."""
    result = await book.move(ledger, transfer_id, coin, debit, credit, amount, code)
    if result.code == "exceeds_credits":
        raise domain.InsufficientCoins("not enough coins")
    if not result.ok:
        raise domain.Conflict(f"the transfer was refused: {result.code}")
    return result.code == "ok"


async def refund(
    uow_factory: UnitOfWorkFactory, principal: Principal, redemption_id: UUID, body: models.RefundIn
) -> models.RedemptionOut:
    """Give coins of a redemption back to the wallet, at most what was redeemed and not yet refunded."""
    async with uow_factory() as uow:
        session = uow.session
        redemption = await store.load_row(session, store.redemptions, redemption_id, "redemption", lock=True)
        merchant = await owned_merchant(session, principal, redemption.merchant_id)
        if body.amount > redemption.amount - redemption.refunded:
            raise domain.Conflict(f"at most {redemption.amount - redemption.refunded} coins can be refunded")
        coin = await store.load_coin_type(session, redemption.coin_type_id)
        ledger = await book.session_of(session)
        refund_id = uuid4()
        source = domain.merchant_account(merchant.id, coin.id)
        await _move(
            ledger,
            refund_id,
            coin,
            source,
            redemption.wallet_account_id,
            body.amount,
            book.TransferCode.REFUND,
        )
        refunded = redemption.refunded + body.amount
        await session.execute(
            sa.update(store.redemptions)
            .where(store.redemptions.c.id == redemption_id)
            .values(refunded=refunded)
        )
        _emit_transfer(
            uow,
            refund_id,
            "refund",
            coin,
            str(merchant.id),
            redemption.citizen_id,
            body.amount,
            merchant.tenant,
        )
        return models.RedemptionOut(
            redemption_id=redemption_id,
            wallet_id=redemption.wallet_account_id,
            coin_type_id=coin.id,
            amount=redemption.amount,
            refunded=refunded,
            wallet_balance_after=await book.available(ledger, redemption.wallet_account_id),
        )


def _emit_transfer(
    uow: UnitOfWork,
    transfer_id: UUID,
    reason: str,
    coin: domain.CoinType,
    from_id: str,
    to_id: str,
    amount: int,
    tenant: str,
) -> None:
    event = events.CoinsTransferred(
        transfer_id=transfer_id,
        reason="refund" if reason == "refund" else "merchant_transfer",
        coin_type_id=coin.id,
        coin_code=coin.code,
        from_id=from_id,
        to_id=to_id,
        amount=amount,
        transferred_at=datetime.now(UTC),
    )
    uow.emit(event, tenant=tenant)


async def transfer_to_merchant(
    uow_factory: UnitOfWorkFactory, principal: Principal, merchant_id: UUID, body: models.MerchantTransferIn
) -> models.TransferOut:
    """A merchant passes coins on to another merchant that accepts them (idempotent by `transfer_id`)."""
    transfer_id = body.transfer_id or uuid4()
    async with uow_factory() as uow:
        session = uow.session
        source = await owned_merchant(session, principal, merchant_id)
        target = await store.load_row(session, store.merchants, body.to_merchant_id, "merchant")
        coin = await store.load_coin_type(session, body.coin_type_id)
        accepts(source, coin)
        accepts(target, coin)
        ledger = await book.session_of(session)
        debit = domain.merchant_account(source.id, coin.id)
        credit = domain.merchant_account(target.id, coin.id)
        if await _move(
            ledger, transfer_id, coin, debit, credit, body.amount, book.TransferCode.MERCHANT_TRANSFER
        ):
            _emit_transfer(
                uow,
                transfer_id,
                "merchant_transfer",
                coin,
                str(source.id),
                str(target.id),
                body.amount,
                source.tenant,
            )
        return models.TransferOut(
            transfer_id=transfer_id, amount=body.amount, balance_after=await book.available(ledger, debit)
        )


async def merchant_balances(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[dict[str, Any]]:
    async with uow_factory() as uow:
        ledger = await book.session_of(uow.session)
        out = []
        for merchant in await store.merchant_of_owner(uow.session, principal.subject):
            for coin_type_id in merchant.coin_type_ids:
                coin = await store.load_coin_type(uow.session, UUID(coin_type_id))
                held = await book.available(ledger, domain.merchant_account(merchant.id, coin.id))
                out.append(
                    {
                        "merchant_id": merchant.id,
                        "merchant_name": merchant.name,
                        "coin_type_id": coin.id,
                        "coin_code": coin.code,
                        "balance": held,
                        "euro_cents": coin.to_cents(coin.settleable(held)),
                    }
                )
        return out
