"""The ledger store: transfer batches applied atomically on SQLite or PostgreSQL and the reads."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid5

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ledger import tables
from ledger.backends import Backend, CoreBackend, Head, PostgresBackend, transfer_from_row
from ledger.domain import (
    Account,
    AccountFlags,
    AccountResult,
    Balance,
    CreateAccountResult,
    CreateTransferResult,
    Entry,
    Transfer,
    TransferFlags,
    TransferKind,
    TransferResult,
    from_micros,
    to_micros,
)
from ledger.engine import Batch
from ledger.journal import effect, genesis, held_amounts, record_hash
from ledger.verify import VerificationReport, verify

Clock = Callable[[], datetime]
T = TypeVar("T")
_EXPIRE_NAMESPACE = UUID("6f1d7c52-6a55-4e8a-9b1e-3f1f6c1f0e11")
_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}


def utc_now() -> datetime:
    return datetime.now(UTC)


def expiry_id(pending_id: UUID) -> UUID:
    """The id of the record that expires a hold: derived from the hold, so an expiry can only happen once."""
    return uuid5(_EXPIRE_NAMESPACE, str(pending_id))


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine suited to the ledger; SQLite transactions take the write lock up front (BEGIN IMMEDIATE)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 40)
    return create_async_engine(url, **kwargs)


def _account_from_row(row: Any) -> Account:
    return Account(
        id=row.id,
        ledger=row.ledger,
        code=row.code,
        flags=AccountFlags(row.flags),
        tenant=row.tenant,
        metadata=row.metadata or {},
        balance=Balance(row.debits_pending, row.debits_posted, row.credits_pending, row.credits_posted),
        timestamp=from_micros(row.ts),
    )


class LedgerSession:
    """Ledger operations inside the caller's transaction: it commits (with its outbox rows) or rolls back."""

    def __init__(self, conn: AsyncConnection, *, clock: Clock = utc_now, fast_path: bool = True) -> None:
        self.conn = conn
        self.clock = clock
        self.backend: Backend = (
            PostgresBackend(conn) if fast_path and conn.dialect.name == "postgresql" else CoreBackend(conn)
        )

    async def create_accounts(self, accounts: Sequence[Account]) -> list[AccountResult]:
        existing = {account.id: account for account in await self.lookup_accounts([a.id for a in accounts])}
        results: list[AccountResult] = []
        new_rows: list[dict[str, Any]] = []
        now = to_micros(self.clock())
        for account in accounts:
            code = _account_problem(account)
            found = existing.get(account.id)
            if code is None and found is not None:
                same = found.same_fields(account)
                code = (
                    CreateAccountResult.EXISTS if same else CreateAccountResult.EXISTS_WITH_DIFFERENT_FIELDS
                )
                results.append(AccountResult(account.id, code, found if same else None))
                continue
            if code is not None:
                results.append(AccountResult(account.id, code))
                continue
            stored = Account(
                id=account.id,
                ledger=account.ledger,
                code=account.code,
                flags=account.flags,
                tenant=account.tenant,
                metadata=dict(account.metadata),
                timestamp=from_micros(now),
            )
            existing[account.id] = stored
            new_rows.append(
                {
                    "id": account.id,
                    "ledger": account.ledger,
                    "code": account.code,
                    "flags": int(account.flags),
                    "tenant": account.tenant,
                    "metadata": dict(account.metadata) or None,
                    "ts": now,
                }
            )
            results.append(AccountResult(account.id, CreateAccountResult.OK, stored))
        if new_rows:
            await self.conn.execute(sa.insert(tables.accounts), new_rows)
        return results

    async def create_transfers(
        self, transfers: Sequence[Transfer], *, atomic: bool = False
    ) -> list[TransferResult]:
        """Apply transfers in order; each fails alone unless linked, or `atomic` (then all or nothing)."""
        return await self._apply(transfers, system=False, atomic=atomic)

    async def expire_pending_transfers(self, limit: int = 1000) -> list[TransferResult]:
        """Release holds whose timeout has passed, each by one `expire` record, and return their results."""
        pending = tables.transfers.alias("pending")
        resolution = tables.transfers.alias("resolution")
        query = (
            sa.select(pending.c.id)
            .where(
                pending.c.expires_at.is_not(None),
                pending.c.expires_at <= to_micros(self.clock()),
                ~sa.exists().where(resolution.c.pending_id == pending.c.id),
            )
            .order_by(pending.c.expires_at)
            .limit(limit)
        )
        ids = (await self.conn.execute(query)).scalars().all()
        expiries = [
            Transfer(
                id=expiry_id(pid),
                pending_id=pid,
                flags=TransferFlags.VOID_PENDING_TRANSFER | TransferFlags.EXPIRE,
            )
            for pid in ids
        ]
        results = await self._apply(expiries, system=True)
        # Only this call's expiries: one a concurrent sweep already wrote comes back as `exists`.
        return [r for r in results if r.code is CreateTransferResult.OK]

    async def _apply(
        self, transfers: Sequence[Transfer], *, system: bool, atomic: bool = False
    ) -> list[TransferResult]:
        if not transfers:
            return []
        backend = self.backend
        pending_ids = {t.pending_id for t in transfers if t.pending_id is not None}
        account_ids: set[UUID] = set()
        for t in transfers:
            if t.debit_account_id is not None:
                account_ids.add(t.debit_account_id)
            if t.credit_account_id is not None:
                account_ids.add(t.credit_account_id)
        # Transfers are immutable, so they can be read before locking; a concurrent insert of the same id
        # surfaces as a unique violation and the whole batch is retried.
        free_head: Head | None = None
        if not pending_ids:
            # No holds: the accounts are known up front, so the reads and the locks take one round trip.
            existing, accounts, free_head = await backend.read_and_lock(
                {t.id for t in transfers}, account_ids
            )
            resolutions: dict[UUID, TransferKind] = {}
        else:
            existing = await backend.load_transfers({t.id for t in transfers} | pending_ids)
            for pid in pending_ids:
                held = existing.get(pid)
                if held is not None:
                    assert (
                        held.transfer.debit_account_id is not None
                        and held.transfer.credit_account_id is not None
                    )
                    account_ids.add(held.transfer.debit_account_id)
                    account_ids.add(held.transfer.credit_account_id)
            accounts = await backend.lock_accounts(account_ids)
            # Read after the locks: a hold's resolution by a concurrent batch on the same accounts is visible.
            resolutions = await backend.load_resolutions(pending_ids)
        batch = Batch(accounts, existing, resolutions, self.clock())
        results = batch.apply(transfers, system=system, atomic=atomic)
        if batch.accepted:
            head = free_head or await backend.acquire_head()
            hashes: list[bytes] = []
            previous = head.hash
            ts = to_micros(batch.now)
            for offset, item in enumerate(batch.accepted):
                previous = record_hash(
                    previous, head.chain, head.pos + 1 + offset, item.transfer, item.body, ts
                )
                hashes.append(previous)
            states = [accounts[i] for i in sorted(batch.touched)]
            await backend.write(batch.accepted, hashes, states, head)
        return results

    async def lookup_accounts(self, ids: Iterable[UUID]) -> list[Account]:
        wanted = list(ids)
        if not wanted:
            return []
        a = tables.accounts
        rows = (await self.conn.execute(sa.select(a).where(a.c.id.in_(wanted)))).all()
        found = {row.id: _account_from_row(row) for row in rows}
        return [found[i] for i in wanted if i in found]

    async def lookup_transfers(self, ids: Iterable[UUID]) -> list[Transfer]:
        wanted = list(ids)
        found = await CoreBackend(self.conn).load_transfers(wanted)
        return [found[i].transfer for i in wanted if i in found]

    async def _account_transfers(self, account_id: UUID, until: datetime | None) -> list[Transfer]:
        t = tables.transfers
        query = sa.select(
            t.c.id, t.c.debit_account_id, t.c.credit_account_id, t.c.amount, t.c.pending_id, t.c.ledger,
            t.c.code, t.c.flags, t.c.timeout, t.c.ts, t.c.metadata, t.c.body_hash,
        ).where(sa.or_(t.c.debit_account_id == account_id, t.c.credit_account_id == account_id))  # fmt: skip
        if until is not None:
            query = query.where(t.c.ts <= to_micros(until))
        rows = (await self.conn.execute(query.order_by(t.c.ts, t.c.chain, t.c.pos))).all()
        return [transfer_from_row(row, row[10]).transfer for row in rows]

    async def get_balance(self, account_id: UUID, as_of: datetime | None = None) -> Balance:
        """The account's balance now (stored), or as of a moment (the fold of its transfers up to then)."""
        if as_of is None:
            accounts = await self.lookup_accounts([account_id])
            return accounts[0].balance if accounts else Balance()
        history = await self.get_account_history(account_id, until=as_of)
        return history[-1].balance if history else Balance()

    async def get_balances(self, account_ids: Iterable[UUID]) -> Balance:
        """The sum of several accounts' balances (the aggregate view of a sharded account)."""
        total = Balance()
        for account in await self.lookup_accounts(account_ids):
            total = total + account.balance
        return total

    async def get_account_history(
        self,
        account_id: UUID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """The account's entries in journal order, each with the running balance after it."""
        records = await self._account_transfers(account_id, until)
        held = held_amounts(records)
        running = Balance()
        entries: list[Entry] = []
        for transfer in records:
            debit, credit = effect(transfer, held.get(transfer.pending_id, 0) if transfer.pending_id else 0)
            change = debit if transfer.debit_account_id == account_id else credit
            running = running + change
            assert transfer.timestamp is not None
            if since is None or transfer.timestamp >= since:
                entries.append(Entry(transfer, change, running))
        return entries[:limit] if limit is not None else entries

    async def pending_state(self, pending_id: UUID) -> TransferKind | None:
        """How a hold ended (post, void or expire), or None while it is still open."""
        resolutions = await CoreBackend(self.conn).load_resolutions([pending_id])
        return resolutions.get(pending_id)


def _account_problem(account: Account) -> CreateAccountResult | None:
    if account.id.int == 0:
        return CreateAccountResult.ID_MUST_NOT_BE_ZERO
    both = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    if account.flags & both == both:
        return CreateAccountResult.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    if account.ledger == 0:
        return CreateAccountResult.LEDGER_MUST_NOT_BE_ZERO
    if account.code == 0:
        return CreateAccountResult.CODE_MUST_NOT_BE_ZERO
    if account.balance != Balance():
        return CreateAccountResult.BALANCES_MUST_BE_ZERO
    return None


def is_retryable(error: BaseException) -> bool:
    """Deadlocks, serialization failures and unique races resolve on a fresh attempt (it sees the winner)."""
    seen: BaseException | None = error
    while seen is not None:
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if state in _RETRYABLE_SQLSTATES:
            return True
        text = str(seen)
        if "UNIQUE constraint failed" in text or "database is locked" in text:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


class Ledger:
    """The ledger over an engine: each call is its own transaction, retried on deadlocks and races."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = utc_now,
        chains: int = 4,
        fast_path: bool = True,
        attempts: int = 10,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.chains = chains
        self.fast_path = fast_path
        self.attempts = attempts

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Ledger:
        return cls(create_engine(url), **options)

    async def close(self) -> None:
        await self.engine.dispose()

    async def create_schema(self) -> None:
        """Create the tables if missing and make sure every journal chain has its head row."""
        async with self.engine.begin() as conn:
            await conn.run_sync(tables.metadata.create_all)
            await install_heads(conn, self.chains)

    def session(self, conn: AsyncConnection) -> LedgerSession:
        return LedgerSession(conn, clock=self.clock, fast_path=self.fast_path)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LedgerSession]:
        async with self.engine.begin() as conn:
            yield self.session(conn)

    async def _retrying(self, work: Callable[[LedgerSession], Awaitable[T]]) -> T:
        for attempt in range(self.attempts):
            try:
                async with self.transaction() as session:
                    return await work(session)
            except Exception as error:
                if attempt + 1 >= self.attempts or not is_retryable(error):
                    raise
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise AssertionError("unreachable")

    async def create_accounts(self, accounts: Sequence[Account]) -> list[AccountResult]:
        return await self._retrying(lambda s: s.create_accounts(accounts))

    async def create_transfers(
        self, transfers: Sequence[Transfer], *, atomic: bool = False
    ) -> list[TransferResult]:
        return await self._retrying(lambda s: s.create_transfers(transfers, atomic=atomic))

    async def expire_pending_transfers(self, limit: int = 1000) -> list[TransferResult]:
        return await self._retrying(lambda s: s.expire_pending_transfers(limit))

    async def _read(self, work: Callable[[LedgerSession], Awaitable[T]]) -> T:
        async with self.engine.connect() as conn:
            return await work(self.session(conn))

    async def lookup_accounts(self, ids: Iterable[UUID]) -> list[Account]:
        wanted = list(ids)
        return await self._read(lambda s: s.lookup_accounts(wanted))

    async def lookup_transfers(self, ids: Iterable[UUID]) -> list[Transfer]:
        wanted = list(ids)
        return await self._read(lambda s: s.lookup_transfers(wanted))

    async def get_balance(self, account_id: UUID, as_of: datetime | None = None) -> Balance:
        return await self._read(lambda s: s.get_balance(account_id, as_of))

    async def get_balances(self, account_ids: Iterable[UUID]) -> Balance:
        wanted = list(account_ids)
        return await self._read(lambda s: s.get_balances(wanted))

    async def get_account_history(
        self,
        account_id: UUID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        return await self._read(
            lambda s: s.get_account_history(account_id, since=since, until=until, limit=limit)
        )

    async def pending_state(self, pending_id: UUID) -> TransferKind | None:
        return await self._read(lambda s: s.pending_state(pending_id))

    async def verify(self) -> VerificationReport:
        """Verify the journal's hash chains and every invariant over the whole store (see `ledger.verify`)."""
        async with self.engine.connect() as conn:
            return await verify(conn)


async def install_heads(conn: AsyncConnection, chains: int) -> None:
    """Insert the head rows of journal chains 0..chains-1 that do not exist yet."""
    h = tables.heads
    present = set((await conn.execute(sa.select(h.c.chain))).scalars().all())
    missing = [{"chain": c, "pos": 0, "hash": genesis(c)} for c in range(chains) if c not in present]
    if missing:
        await conn.execute(sa.insert(h), missing)
