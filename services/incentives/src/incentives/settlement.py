"""Settlement of merchants in euro (statements and a pain.001 file), coin expiry to breakage, and reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import incentives as events
from eventbus import UnitOfWork, UnitOfWorkFactory
from incentives import book, domain, models, sepa, store
from ledger import AMOUNT_MAX, LedgerSession, TransferFlags
from ledger import tables as ledger_tables
from servicekit.auth import Principal


@dataclass(frozen=True)
class Payer:
    """The municipality paying merchants out: its name and IBAN on the pain.001 file."""

    name: str
    iban: str


async def settle(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: models.SettlementIn, payer: Payer
) -> models.SettlementBatchOut:
    """Repay every merchant of the caller's municipality for coins held at the end of the period."""
    if body.period_end < body.period_start:
        raise domain.Conflict("the period ends before it starts")
    async with uow_factory() as uow:
        session = uow.session
        b = store.settlement_batches
        taken = await session.execute(
            sa.select(b.c.id).where(
                b.c.tenant == principal.tenant,
                b.c.period_start == body.period_start,
                b.c.period_end == body.period_end,
            )
        )
        if taken.first() is not None:
            raise domain.Conflict("this period was settled already")
        batch_id, now = uuid4(), datetime.now(UTC)
        cutoff = datetime.combine(body.period_end + timedelta(days=1), time(), domain.LOCAL_TIME).astimezone(
            UTC
        )
        ledger = await book.session_of(session)
        merchants = (
            await session.execute(
                sa.select(store.merchants).where(store.merchants.c.tenant == principal.tenant)
            )
        ).all()
        lines: list[models.StatementLine] = []
        payments: list[sepa.Payment] = []
        payment_information_id = f"CB-{batch_id.hex[:20]}"
        for merchant in merchants:
            for coin_type_id in merchant.coin_type_ids:
                coin = await store.load_coin_type(session, UUID(coin_type_id))
                line = await _settle_merchant(
                    uow, ledger, merchant, coin, body, batch_id, cutoff, payment_information_id, now
                )
                if line is not None:
                    lines.append(line)
                    payments.append(_payment(line, merchant, coin))
        total = sum(line.amount_cents for line in lines)
        document = sepa.pain001(
            sepa.Initiation(
                f"CB-{batch_id.hex[:30]}",
                payment_information_id,
                now,
                body.period_end + timedelta(days=1),
                payer.name,
                payer.iban,
                payments,
            )
        )
        await session.execute(
            sa.insert(b).values(
                id=batch_id,
                tenant=principal.tenant,
                period_start=body.period_start,
                period_end=body.period_end,
                amount_cents=total,
                pain001=document,
                created_at=now,
            )
        )
        return models.SettlementBatchOut(
            batch_id=batch_id,
            period_start=body.period_start,
            period_end=body.period_end,
            amount_cents=total,
            statements=lines,
        )


def _payment(line: models.StatementLine, merchant: Any, coin: domain.CoinType) -> sepa.Payment:
    remittance = f"{line.coins} {coin.code} coins {line.period_start}..{line.period_end}"
    return sepa.Payment(
        line.settlement_id.hex[:35], line.amount_cents, merchant.name, merchant.iban, remittance
    )


async def _settle_merchant(
    uow: UnitOfWork,
    ledger: LedgerSession,
    merchant: Any,
    coin: domain.CoinType,
    body: models.SettlementIn,
    batch_id: UUID,
    cutoff: datetime,
    payment_information_id: str,
    now: datetime,
) -> models.StatementLine | None:
    account_id = domain.merchant_account(merchant.id, coin.id)
    at_cutoff = (await ledger.get_balance(account_id, as_of=cutoff)).available
    # Coins passed on after the period ended are no longer here to settle.
    coins = coin.settleable(min(at_cutoff, await book.available(ledger, account_id)))
    if coins <= 0:
        return None
    settlement_id = domain.stable_id("settle", batch_id, merchant.id, coin.id)
    result = await book.move(
        ledger,
        settlement_id,
        coin,
        account_id,
        domain.settled_account(coin.id),
        coins,
        book.TransferCode.SETTLE,
    )
    if not result.ok:
        raise domain.Conflict(f"settling {merchant.name} failed: {result.code}")
    cents = coin.to_cents(coins)
    await uow.session.execute(
        sa.insert(store.settlements).values(
            id=settlement_id,
            batch_id=batch_id,
            merchant_id=merchant.id,
            coin_type_id=coin.id,
            period_start=body.period_start,
            period_end=body.period_end,
            coins=coins,
            amount_cents=cents,
            payment_information_id=payment_information_id,
            settled_at=now,
        )
    )
    settled = events.MerchantSettled(
        settlement_id=settlement_id,
        merchant_id=merchant.id,
        merchant_kbo=merchant.kbo,
        coin_type_id=coin.id,
        coin_code=coin.code,
        period_start=body.period_start,
        period_end=body.period_end,
        coins=coins,
        amount_cents=cents,
        payment_information_id=payment_information_id,
        settled_at=now,
    )
    uow.emit(settled, tenant=merchant.tenant)
    return models.StatementLine(
        settlement_id=settlement_id,
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        coin_code=coin.code,
        coins=coins,
        amount_cents=cents,
        period_start=body.period_start,
        period_end=body.period_end,
        payment_information_id=payment_information_id,
    )


async def payout_file(uow_factory: UnitOfWorkFactory, principal: Principal, batch_id: UUID) -> str:
    async with uow_factory() as uow:
        row = await store.load_row(uow.session, store.settlement_batches, batch_id, "settlement")
    if row.tenant != principal.tenant:
        raise domain.NotFound("no such settlement")
    return str(row.pain001)


async def statements(
    uow_factory: UnitOfWorkFactory, principal: Principal, *, merchant_owner: bool
) -> list[models.StatementLine]:
    """A merchant's own statements, or all of the admin's municipality."""
    s, m, t = store.settlements, store.merchants, store.coin_types
    query = (
        sa.select(s, m.c.name.label("merchant_name"), t.c.code.label("coin_code"))
        .join(m, m.c.id == s.c.merchant_id)
        .join(t, t.c.id == s.c.coin_type_id)
        .order_by(s.c.period_end.desc(), m.c.name)
    )
    if merchant_owner:
        query = query.where(m.c.owner_subject == principal.subject, m.c.tenant == principal.tenant)
    else:
        query = query.where(m.c.tenant == principal.tenant)
    async with uow_factory() as uow:
        rows = (await uow.session.execute(query)).all()
    return [
        models.StatementLine(settlement_id=r.id, **{k: v for k, v in r._mapping.items() if k in _LINE_FIELDS})
        for r in rows
    ]


_LINE_FIELDS = set(models.StatementLine.model_fields) - {"settlement_id"}


async def _coin_for_admin(session: AsyncSession, principal: Principal, coin_type_id: UUID) -> domain.CoinType:
    coin = await store.load_coin_type(session, coin_type_id)
    if not coin.administered_by(principal.tenant):
        raise domain.NotFound("no such coin type")
    return coin


async def notice_expiry(
    uow_factory: UnitOfWorkFactory, principal: Principal, coin_type_id: UUID
) -> models.ExpiryOut:
    """Tell every citizen holding coins of this type that they expire at the coin type's expiry moment."""
    async with uow_factory() as uow:
        coin = await _coin_for_admin(uow.session, principal, coin_type_id)
        if coin.expires_at is None:
            raise domain.Conflict(f"{coin.code} coins do not expire")
        ledger = await book.session_of(uow.session)
        now, wallets, coins = datetime.now(UTC), 0, 0
        for wallet in await _wallets(uow.session, coin.id):
            held = await book.available(ledger, wallet.account_id)
            row = {
                "coin_type_id": coin.id,
                "wallet_account_id": wallet.account_id,
                "amount": held,
                "noticed_at": now,
            }
            if held <= 0 or not await store.insert_ignore(uow.session, store.expiry_notices, row):
                continue
            noticed = events.CoinsExpiryNoticed(
                notice_id=domain.stable_id("notice", coin.id, wallet.account_id),
                wallet_id=wallet.account_id,
                citizen_id=wallet.citizen_id,
                coin_type_id=coin.id,
                coin_code=coin.code,
                amount=held,
                expires_at=coin.expires_at,
                noticed_at=now,
            )
            uow.emit(noticed, tenant=coin.issuer_tenant)
            wallets, coins = wallets + 1, coins + held
        return models.ExpiryOut(wallets=wallets, coins=coins)


async def _wallets(session: AsyncSession, coin_type_id: UUID) -> list[Any]:
    w = store.wallets
    return list((await session.execute(sa.select(w).where(w.c.coin_type_id == coin_type_id))).all())


async def expire(
    uow_factory: UnitOfWorkFactory, principal: Principal, coin_type_id: UUID, now: datetime | None = None
) -> models.ExpiryOut:
    """Move what noticed wallets still hold to breakage; wallets never noticed keep their coins for now."""
    now = now or datetime.now(UTC)
    async with uow_factory() as uow:
        coin = await _coin_for_admin(uow.session, principal, coin_type_id)
        if coin.expires_at is None or now < coin.expires_at:
            raise domain.Conflict(f"{coin.code} coins have not expired yet")
        ledger = await book.session_of(uow.session)
        n = store.expiry_notices
        noticed = (
            (await uow.session.execute(sa.select(n.c.wallet_account_id).where(n.c.coin_type_id == coin.id)))
            .scalars()
            .all()
        )
        wallets, coins = 0, 0
        for account_id in noticed:
            amount = await _expire_wallet(uow, ledger, coin, account_id, now)
            wallets, coins = wallets + (amount > 0), coins + amount
        return models.ExpiryOut(wallets=wallets, coins=coins)


async def _expire_wallet(
    uow: UnitOfWork, ledger: LedgerSession, coin: domain.CoinType, account_id: UUID, now: datetime
) -> int:
    expiry_id = domain.stable_id("expire", coin.id, account_id)
    # Balancing: the amount is an upper bound clamped to what the wallet holds, read under the account lock.
    result = await book.move(
        ledger,
        expiry_id,
        coin,
        account_id,
        domain.breakage_account(coin.id),
        AMOUNT_MAX,
        book.TransferCode.EXPIRE,
        flags=TransferFlags.BALANCING_DEBIT,
    )
    if result.code != "ok" or result.transfer is None:
        return 0
    wallet = await store.load_row(uow.session, store.wallets, account_id, "wallet")
    expired = events.CoinsExpired(
        expiry_id=expiry_id,
        wallet_id=account_id,
        citizen_id=wallet.citizen_id,
        coin_type_id=coin.id,
        coin_code=coin.code,
        amount=result.transfer.amount,
        expired_at=now,
    )
    uow.emit(expired, tenant=coin.issuer_tenant)
    return result.transfer.amount


@dataclass(frozen=True)
class Lifecycle:
    """Where the coins of one type are: issued = citizens + merchants + settled + expired."""

    issued: int
    citizens: int
    merchants: int
    settled: int
    expired: int
    budgets_left: int


async def lifecycle(session: AsyncSession, coin: domain.CoinType) -> Lifecycle:
    a = ledger_tables.accounts
    query = (
        sa.select(a.c.code, sa.func.sum(a.c.credits_posted), sa.func.sum(a.c.debits_posted))
        .where(a.c.ledger == coin.ledger)
        .group_by(a.c.code)
    )
    sums = {
        code: (int(credits or 0), int(debits or 0))
        for code, credits, debits in (await session.execute(query)).all()
    }

    def held(code: book.AccountCode) -> int:
        credits, debits = sums.get(int(code), (0, 0))
        return credits - debits

    issued = held(book.AccountCode.WALLET) + held(book.AccountCode.MERCHANT)
    issued += held(book.AccountCode.SETTLED) + held(book.AccountCode.BREAKAGE)
    budgets_credits, budgets_debits = sums.get(int(book.AccountCode.BUDGET), (0, 0))
    issued_from_budgets = budgets_debits
    if issued != issued_from_budgets:
        raise RuntimeError(
            f"{coin.code}: coins in circulation {issued} differ from coins issued {issued_from_budgets}"
        )
    return Lifecycle(
        issued=issued_from_budgets,
        citizens=held(book.AccountCode.WALLET),
        merchants=held(book.AccountCode.MERCHANT),
        settled=held(book.AccountCode.SETTLED),
        expired=held(book.AccountCode.BREAKAGE),
        budgets_left=budgets_credits - budgets_debits,
    )


async def campaign_reports(
    uow_factory: UnitOfWorkFactory, principal: Principal
) -> list[models.CampaignReport]:
    """Per campaign: issued, budget left, redeemed and expired (pro rata to its share of the coin type)."""
    c, i = store.campaigns, store.issuances
    async with uow_factory() as uow:
        session = uow.session
        ledger = await book.session_of(session)
        rows = (
            await session.execute(sa.select(c).where(c.c.tenant == principal.tenant).order_by(c.c.created_at))
        ).all()
        reports = []
        for row in rows:
            coin = await store.load_coin_type(session, row.coin_type_id)
            issued, count = (
                await session.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(i.c.amount), 0), sa.func.count()).where(
                        i.c.campaign_id == row.id
                    )
                )
            ).one()
            totals = await lifecycle(session, coin)
            redeemed = await _redeemed(session, coin.id)
            reports.append(
                models.CampaignReport(
                    campaign_id=row.id,
                    name=row.name,
                    coin_code=coin.code,
                    budget_coins=row.budget_coins,
                    issued=int(issued),
                    issuances=int(count),
                    redeemed=_share(redeemed, int(issued), totals.issued),
                    expired=_share(totals.expired, int(issued), totals.issued),
                    budget_left=await book.available(ledger, domain.budget_account(row.id)),
                )
            )
        return reports


async def _redeemed(session: AsyncSession, coin_type_id: UUID) -> int:
    r = store.redemptions
    query = sa.select(sa.func.coalesce(sa.func.sum(r.c.amount - r.c.refunded), 0)).where(
        r.c.coin_type_id == coin_type_id
    )
    return int((await session.execute(query)).scalar_one())


def _share(total: int, part: int, whole: int) -> int:
    return total * part // whole if whole else 0
