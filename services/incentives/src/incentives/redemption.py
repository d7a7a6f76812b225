"""Redemption: scans arriving together are decided in one transaction (group commit), each with its answer."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import incentives as events
from eventbus import UnitOfWork, UnitOfWorkFactory
from incentives import book, domain, models, spending, store
from ledger import Transfer, TransferResult
from ledger import tables as ledger_tables
from servicekit.auth import Principal

log = logging.getLogger(__name__)

# Scans decided in one transaction at most; more wait for the next one.
MAX_BATCH = 64
# Transactions of scans at a time per process: one commits while the next batch is decided.
IN_FLIGHT = 2


@dataclass(frozen=True)
class Scan:
    """A merchant's request to take `amount` coins with a genuine, unexpired QR payload."""

    principal: Principal
    merchant_id: UUID
    amount: int
    claims: domain.QrClaims
    at: datetime

    @property
    def redemption_id(self) -> UUID:
        return domain.stable_id("redeem", self.claims.nonce)


def read_scan(principal: Principal, body: models.RedeemIn, secret: bytes) -> Scan:
    """Check the payload's signature, expiry and cap before anything touches the database."""
    now = datetime.now(UTC)
    claims = domain.read_qr(secret, body.qr, now)
    if claims.max_amount is not None and body.amount > claims.max_amount:
        raise domain.InsufficientCoins(f"the citizen allowed at most {claims.max_amount} coins")
    return Scan(principal, body.merchant_id, body.amount, claims, now)


class _Later(Exception):
    """Refused only because of scans decided in the same transaction: decide it again after they commit."""


Outcome = models.RedemptionOut | Exception


async def redeem_together(
    uow_factory: UnitOfWorkFactory, scans: Sequence[Scan], limits: domain.VelocityLimits
) -> list[Outcome]:
    """Decide every scan in one transaction; a refused scan changes nothing and does not refuse the others.

    Raises when the transaction fails as a whole (the caller then decides each scan alone).
    """
    async with uow_factory() as uow:
        session = uow.session
        merchants = await store.load_merchants(session, {s.merchant_id for s in scans})
        history = await _History.read(session, scans, limits)
        wallets = history.scanned
        outcomes: list[Outcome | None] = []
        taken: list[tuple[int, Scan, Any, domain.CoinType]] = []
        for index, scan in enumerate(scans):
            try:
                merchant, coin = await _check(session, scan, merchants, wallets, history)
                history.admit(limits, scan)
            except (domain.IncentiveError, _Later) as refused:
                outcomes.append(refused)
                continue
            outcomes.append(None)  # the ledger decides below
            taken.append((index, scan, merchant, coin))
        ledger = await book.session_of(session)
        results = await ledger.create_transfers(
            [_transfer(scan, merchant, coin) for _, scan, merchant, coin in taken]
        )
        held = {wallet_id: wallet.held for wallet_id, wallet in wallets.items()}
        redeemed = []
        for (index, scan, merchant, coin), result in zip(taken, results, strict=True):
            refusal = _refusal(result)
            if refusal is not None:
                outcomes[index] = refusal
                continue
            wallet_id = scan.claims.wallet_id
            held[wallet_id] = max(held[wallet_id] - scan.amount, 0)
            outcomes[index] = _out(scan, coin, held[wallet_id])
            redeemed.append((scan, merchant, coin, wallets[wallet_id].citizen_id))
        await _record(uow, redeemed)
    return [outcome for outcome in outcomes if outcome is not None]


async def _check(
    session: AsyncSession,
    scan: Scan,
    merchants: dict[UUID, Any],
    wallets: dict[UUID, _Wallet],
    history: _History,
) -> tuple[Any, domain.CoinType]:
    merchant = merchants.get(scan.merchant_id)
    principal = scan.principal
    if merchant is None or merchant.owner_subject != principal.subject or merchant.tenant != principal.tenant:
        raise domain.NotFound("no such merchant")
    if scan.claims.wallet_id not in wallets:
        raise domain.NotFound("no such wallet")
    coin = await store.load_coin_type(session, scan.claims.coin_type_id)
    spending.accepts(merchant, coin)
    if scan.claims.nonce in history.used:
        raise domain.QrAlreadyUsed("this QR code was used already; show a fresh one")
    return merchant, coin


@functools.cache
def _history_query(dialect: str) -> sa.CompoundSelect[Any]:
    """The union `_History.read` runs, built once per dialect (building and keying it cost more than a run).

    Its parameters: `wallets`, `nonces` and `merchants` (lists of ids) and `since`.
    """
    r, w, a = store.redemptions, store.wallets, ledger_tables.accounts

    recent = r.c.redeemed_at >= sa.bindparam("since", type_=r.c.redeemed_at.type)
    coins = sa.func.coalesce(sa.func.sum(r.c.amount), 0)
    no_citizen = sa.cast(sa.null(), w.c.citizen_id.type)
    held = sa.func.coalesce(a.c.credits_posted - a.c.debits_posted - a.c.debits_pending, 0)
    return sa.union_all(
        # The wallets with what they hold (read without a lock: the ledger decides).
        sa.select(sa.literal("h"), w.c.account_id, held, sa.literal(0), w.c.citizen_id)
        .select_from(w.outerjoin(a, a.c.id == w.c.account_id))
        .where(store.any_of(dialect, w.c.account_id, "wallets")),
        sa.select(sa.literal("n"), r.c.qr_nonce, sa.literal(0), sa.literal(0), no_citizen).where(
            store.any_of(dialect, r.c.qr_nonce, "nonces")
        ),
        sa.select(sa.literal("w"), r.c.wallet_account_id, sa.func.count(), coins, no_citizen)
        .where(store.any_of(dialect, r.c.wallet_account_id, "wallets"), recent)
        .group_by(r.c.wallet_account_id),
        sa.select(sa.literal("m"), r.c.merchant_id, sa.func.count(), coins, no_citizen)
        .where(store.any_of(dialect, r.c.merchant_id, "merchants"), recent)
        .group_by(r.c.merchant_id),
    )


@dataclass
class _Totals:
    count: int = 0
    coins: int = 0


@dataclass(frozen=True)
class _Wallet:
    citizen_id: str
    held: int


@dataclass
class _History:
    """Scanned wallets, nonces used before, recent redemptions per wallet and merchant, and this batch's."""

    scanned: dict[UUID, _Wallet] = field(default_factory=dict)
    used: set[UUID] = field(default_factory=set)
    wallets: dict[UUID, _Totals] = field(default_factory=dict)
    merchants: dict[UUID, _Totals] = field(default_factory=dict)
    admitted_wallets: dict[UUID, _Totals] = field(default_factory=dict)
    admitted_merchants: dict[UUID, _Totals] = field(default_factory=dict)

    @classmethod
    async def read(
        cls, session: AsyncSession, scans: Sequence[Scan], limits: domain.VelocityLimits
    ) -> _History:
        """One round trip: a union of four reads, each row a kind, a uuid, two numbers and maybe a citizen."""
        since = min(s.at for s in scans) - timedelta(seconds=limits.window_s)
        params = {
            "wallets": list({s.claims.wallet_id for s in scans}),
            "nonces": list({s.claims.nonce for s in scans}),
            "merchants": list({s.merchant_id for s in scans}),
            "since": since,
        }
        history = cls()
        query = _history_query(session.get_bind().dialect.name)
        for kind, key, count, total, citizen in (await session.execute(query, params)).all():
            if kind == "h":
                history.scanned[key] = _Wallet(citizen, int(count))
            elif kind == "n":
                history.used.add(key)
            else:
                totals = history.wallets if kind == "w" else history.merchants
                totals[key] = _Totals(int(count), int(total))
        return history

    def admit(self, limits: domain.VelocityLimits, scan: Scan) -> None:
        """Check the velocity limits, counting scans admitted before in this batch; then count this one."""
        wallet_id = scan.claims.wallet_id
        before = self.wallets.get(wallet_id, _Totals()), self.merchants.get(scan.merchant_id, _Totals())
        ours = (
            self.admitted_wallets.get(wallet_id, _Totals()),
            self.admitted_merchants.get(scan.merchant_id, _Totals()),
        )
        try:
            domain.check_velocity(
                limits,
                before[0].count + ours[0].count,
                before[0].coins + ours[0].coins,
                before[1].coins + ours[1].coins,
                scan.amount,
            )
        except domain.VelocityLimitExceeded:
            if ours[0].count or ours[1].count:
                # Scans admitted here may yet be refused by the ledger: decide after they committed.
                raise _Later() from None
            raise
        for totals, key in ((self.admitted_wallets, wallet_id), (self.admitted_merchants, scan.merchant_id)):
            entry = totals.setdefault(key, _Totals())
            entry.count += 1
            entry.coins += scan.amount


def _transfer(scan: Scan, merchant: Any, coin: domain.CoinType) -> Transfer:
    return Transfer(
        scan.redemption_id,
        debit_account_id=scan.claims.wallet_id,
        credit_account_id=domain.merchant_account(merchant.id, coin.id),
        amount=scan.amount,
        ledger=coin.ledger,
        code=int(book.TransferCode.REDEEM),
    )


def _refusal(result: TransferResult) -> domain.IncentiveError | None:
    if result.code == "ok":
        return None
    if result.code == "exceeds_credits":
        return domain.InsufficientCoins("not enough coins")
    if result.code in ("exists", "exists_with_different_fields"):
        return domain.QrAlreadyUsed("this QR code was used already; show a fresh one")
    return domain.Conflict(f"the transfer was refused: {result.code}")


def _out(scan: Scan, coin: domain.CoinType, left: int) -> models.RedemptionOut:
    return models.RedemptionOut(
        redemption_id=scan.redemption_id,
        wallet_id=scan.claims.wallet_id,
        coin_type_id=coin.id,
        amount=scan.amount,
        refunded=0,
        wallet_balance_after=left,
    )


async def _record(uow: UnitOfWork, redeemed: list[tuple[Scan, Any, domain.CoinType, str]]) -> None:
    """The redemption rows (the nonce is unique: a QR payload is redeemed once) and their events."""
    if not redeemed:
        return
    rows = [
        {
            "id": scan.redemption_id,
            "qr_nonce": scan.claims.nonce,
            "wallet_account_id": scan.claims.wallet_id,
            "citizen_id": citizen_id,
            "merchant_id": merchant.id,
            "coin_type_id": coin.id,
            "amount": scan.amount,
            "refunded": 0,
            "redeemed_at": scan.at,
        }
        for scan, merchant, coin, citizen_id in redeemed
    ]
    await uow.session.execute(sa.insert(store.redemptions), rows)
    for scan, merchant, coin, _ in redeemed:
        uow.emit(redeemed_event(scan, merchant, coin), tenant=merchant.tenant)


def redeemed_event(scan: Scan, merchant: Any, coin: domain.CoinType) -> events.CoinsRedeemed:
    return events.CoinsRedeemed(
        redemption_id=scan.redemption_id,
        wallet_id=scan.claims.wallet_id,
        coin_type_id=coin.id,
        coin_code=coin.code,
        merchant_id=merchant.id,
        amount=scan.amount,
        redeemed_at=scan.at,
    )


async def redeem_alone(
    uow_factory: UnitOfWorkFactory, scan: Scan, limits: domain.VelocityLimits
) -> models.RedemptionOut:
    """One scan in its own transaction; raises its refusal."""
    [outcome] = await redeem_together(uow_factory, [scan], limits)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class RedemptionDesk:
    """Group commit of a process's scans: each transaction takes every scan waiting (up to `max_batch`).

    At most `in_flight` transactions run at a time; a scan arriving while they do waits for the next one, so a
    lone scan goes at once and a busy desk commits many scans per transaction. When a transaction fails as a
    whole (a database error), its scans are decided again one by one, so one bad scan fails alone.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        limits: domain.VelocityLimits,
        *,
        max_batch: int = MAX_BATCH,
        in_flight: int = IN_FLIGHT,
    ) -> None:
        self.uow_factory = uow_factory
        self._limits = limits
        self._max_batch = max_batch
        self._in_flight = in_flight
        self._waiting: deque[tuple[Scan, asyncio.Future[models.RedemptionOut]]] = deque()
        self._running: set[asyncio.Task[None]] = set()

    async def redeem(self, scan: Scan) -> models.RedemptionOut:
        future: asyncio.Future[models.RedemptionOut] = asyncio.get_running_loop().create_future()
        self._waiting.append((scan, future))
        if len(self._running) < self._in_flight:
            task = asyncio.create_task(self._drain(), name="redemption-desk")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch = [self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))]
            await self._decide(batch)

    async def _decide(self, batch: list[tuple[Scan, asyncio.Future[models.RedemptionOut]]]) -> None:
        try:
            outcomes = await redeem_together(self.uow_factory, [scan for scan, _ in batch], self._limits)
        except Exception as error:
            if len(batch) > 1:
                log.warning("a batch of %d scans failed; deciding each alone", len(batch), exc_info=True)
                for item in batch:
                    await self._decide([item])
                return
            outcomes = [error]
        later = []
        for item, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, _Later):
                later.append(item)
            else:
                _settle(item[1], outcome)
        self._waiting.extendleft(reversed(later))


def _settle(future: asyncio.Future[models.RedemptionOut], outcome: Outcome) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
