"""Storage backends of a batch: portable SQLAlchemy Core, and a set-based asyncpg path for PostgreSQL."""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import tables
from ledger.domain import Transfer, TransferFlags, TransferKind, from_micros, to_micros
from ledger.engine import Accepted, AccountState, StoredTransfer
from ledger.journal import genesis


@dataclass(slots=True)
class Head:
    chain: int
    pos: int
    hash: bytes


def transfer_from_row(row: Any, metadata: Any) -> StoredTransfer:
    """A stored transfer from a row: id, accounts, amount, ..., ts, metadata (decoded), body hash."""
    transfer = Transfer(
        id=row[0],
        debit_account_id=row[1],
        credit_account_id=row[2],
        amount=row[3],
        pending_id=row[4],
        ledger=row[5],
        code=row[6],
        flags=TransferFlags(row[7]),
        timeout=row[8],
        timestamp=from_micros(row[9]),
        metadata=metadata or {},
    )
    return StoredTransfer(transfer, bytes(row[11]))


def _expires_at(transfer: Transfer) -> int | None:
    if transfer.flags & TransferFlags.PENDING and transfer.timeout > 0:
        assert transfer.timestamp is not None
        return to_micros(transfer.timestamp) + transfer.timeout * 1_000_000
    return None


class Backend(Protocol):
    async def load_transfers(self, ids: Collection[UUID]) -> dict[UUID, StoredTransfer]: ...

    async def lock_accounts(self, ids: Collection[UUID]) -> dict[UUID, AccountState]: ...

    async def load_resolutions(self, pending_ids: Collection[UUID]) -> dict[UUID, TransferKind]: ...

    async def acquire_head(self) -> Head: ...

    async def read_and_lock(
        self, transfer_ids: Collection[UUID], account_ids: Collection[UUID]
    ) -> tuple[dict[UUID, StoredTransfer], dict[UUID, AccountState], Head | None]:
        """`load_transfers`, `lock_accounts`, then a head if one is free at once (else None: acquire one)."""
        ...

    async def write(
        self,
        accepted: Sequence[Accepted],
        hashes: Sequence[bytes],
        states: Sequence[AccountState],
        head: Head,
    ) -> None: ...


def _account_state(row: Any) -> AccountState:
    return AccountState(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


class CoreBackend:
    """Portable statements (SQLite and PostgreSQL); row locks where the dialect has them."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def load_transfers(self, ids: Collection[UUID]) -> dict[UUID, StoredTransfer]:
        if not ids:
            return {}
        t = tables.transfers
        query = sa.select(
            t.c.id, t.c.debit_account_id, t.c.credit_account_id, t.c.amount, t.c.pending_id, t.c.ledger,
            t.c.code, t.c.flags, t.c.timeout, t.c.ts, t.c.metadata, t.c.body_hash,
        ).where(t.c.id.in_(list(ids)))  # fmt: skip
        rows = (await self.conn.execute(query)).all()
        return {row[0]: transfer_from_row(row, row[10]) for row in rows}

    async def lock_accounts(self, ids: Collection[UUID]) -> dict[UUID, AccountState]:
        if not ids:
            return {}
        a = tables.accounts
        query = (
            sa.select(
                a.c.id,
                a.c.ledger,
                a.c.flags,
                a.c.debits_pending,
                a.c.debits_posted,
                a.c.credits_pending,
                a.c.credits_posted,
            )
            .where(a.c.id.in_(sorted(ids)))
            .order_by(a.c.id)
            .with_for_update(key_share=True)
        )
        rows = (await self.conn.execute(query)).all()
        return {row[0]: _account_state(row) for row in rows}

    async def load_resolutions(self, pending_ids: Collection[UUID]) -> dict[UUID, TransferKind]:
        if not pending_ids:
            return {}
        t = tables.transfers
        query = sa.select(t.c.pending_id, t.c.flags).where(t.c.pending_id.in_(list(pending_ids)))
        rows = (await self.conn.execute(query)).all()
        return {row[0]: Transfer(id=row[0], flags=TransferFlags(row[1])).kind for row in rows}

    async def read_and_lock(
        self, transfer_ids: Collection[UUID], account_ids: Collection[UUID]
    ) -> tuple[dict[UUID, StoredTransfer], dict[UUID, AccountState], Head | None]:
        return await self.load_transfers(transfer_ids), await self.lock_accounts(account_ids), None

    async def acquire_head(self) -> Head:
        h = tables.heads
        query = sa.select(h.c.chain, h.c.pos, h.c.hash).order_by(h.c.chain).limit(1)
        row = (await self.conn.execute(query.with_for_update(skip_locked=True))).first()
        if row is None:
            chains = (await self.conn.execute(sa.select(h.c.chain))).scalars().all()
            if not chains:
                await self.conn.execute(sa.insert(h).values(chain=0, pos=0, hash=genesis(0)))
                chains = [0]
            # Every chain is busy: wait for one at random.
            query = sa.select(h.c.chain, h.c.pos, h.c.hash).where(h.c.chain == random.choice(chains))
            row = (await self.conn.execute(query.with_for_update())).one()
        return Head(row[0], row[1], bytes(row[2]))

    async def write(
        self,
        accepted: Sequence[Accepted],
        hashes: Sequence[bytes],
        states: Sequence[AccountState],
        head: Head,
    ) -> None:
        rows = []
        for offset, (item, digest) in enumerate(zip(accepted, hashes, strict=True)):
            t = item.transfer
            assert t.timestamp is not None
            rows.append(
                {
                    "id": t.id,
                    "chain": head.chain,
                    "pos": head.pos + 1 + offset,
                    "debit_account_id": t.debit_account_id,
                    "credit_account_id": t.credit_account_id,
                    "amount": t.amount,
                    "pending_id": t.pending_id,
                    "ledger": t.ledger,
                    "code": t.code,
                    "flags": int(t.flags),
                    "timeout": t.timeout,
                    "expires_at": _expires_at(t),
                    "ts": to_micros(t.timestamp),
                    "metadata": dict(t.metadata) if t.metadata else None,
                    "body_hash": item.body,
                    "hash": digest,
                }
            )
        await self.conn.execute(sa.insert(tables.transfers), rows)
        a = tables.accounts
        update = (
            sa.update(a)
            .where(a.c.id == sa.bindparam("b_id"))
            .values(
                debits_pending=sa.bindparam("b_dp"),
                debits_posted=sa.bindparam("b_dpo"),
                credits_pending=sa.bindparam("b_cp"),
                credits_posted=sa.bindparam("b_cpo"),
            )
        )
        await self.conn.execute(
            update,
            [
                {
                    "b_id": s.id,
                    "b_dp": s.debits_pending,
                    "b_dpo": s.debits_posted,
                    "b_cp": s.credits_pending,
                    "b_cpo": s.credits_posted,
                }
                for s in states
            ],
        )
        h = tables.heads
        await self.conn.execute(
            sa.update(h).where(h.c.chain == head.chain).values(pos=head.pos + len(accepted), hash=hashes[-1])
        )


_SELECT_TRANSFERS = (
    "SELECT id, debit_account_id, credit_account_id, amount, pending_id, ledger, code, flags, timeout, ts, "
    "metadata::text, body_hash FROM ledger_transfers"
)
_LOCK_ACCOUNTS = (
    "SELECT id, ledger, flags, debits_pending, debits_posted, credits_pending, credits_posted "
    "FROM ledger_accounts WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE"
)
# The reads of a batch without holds in one round trip: its transfer ids already stored, its accounts locked
# (in id order, as `_LOCK_ACCOUNTS`), then a free journal head locked. The branches of a UNION ALL run in
# order, so the locks are taken in the order of the separate statements. Rows: kind 0 a transfer (columns
# 1-12 as `_SELECT_TRANSFERS`), kind 1 an account (id, ledger, flags, then its four totals in 13-16), kind 2
# the head (chain in 6, pos in 4, hash in 12).
_READ_AND_LOCK = """
WITH found AS (
    SELECT id, debit_account_id, credit_account_id, amount, pending_id, ledger, code, flags, timeout, ts,
        metadata::text AS metadata, body_hash
    FROM ledger_transfers WHERE id = ANY($1::uuid[])
), locked AS (
    SELECT id, ledger, flags, debits_pending, debits_posted, credits_pending, credits_posted
    FROM ledger_accounts WHERE id = ANY($2::uuid[]) ORDER BY id FOR NO KEY UPDATE
), head AS (
    SELECT chain, pos, hash FROM ledger_heads ORDER BY chain LIMIT 1 FOR UPDATE SKIP LOCKED
)
SELECT 0, id, debit_account_id, credit_account_id, amount, pending_id, ledger, code, flags, timeout, ts,
    metadata, body_hash, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint
FROM found
UNION ALL
SELECT 1, id, NULL, NULL, NULL, NULL, ledger, NULL, flags, NULL, NULL, NULL, NULL,
    debits_pending, debits_posted, credits_pending, credits_posted
FROM locked
UNION ALL
SELECT 2, NULL, NULL, NULL, pos, NULL, chain, NULL, NULL, NULL, NULL, NULL, hash, NULL, NULL, NULL, NULL
FROM head
"""
_WRITE = """
WITH new_transfers AS (
    INSERT INTO ledger_transfers (id, chain, pos, debit_account_id, credit_account_id, amount, pending_id,
        ledger, code, flags, timeout, expires_at, ts, metadata, body_hash, hash)
    SELECT u.id, $1, u.pos, u.dr, u.cr, u.amount, u.pending_id, u.ledger, u.code, u.flags, u.timeout,
        u.expires_at, u.ts, u.metadata::json, u.body_hash, u.hash
    FROM unnest($2::bigint[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bigint[], $7::uuid[], $8::int[],
        $9::int[], $10::int[], $11::int[], $12::bigint[], $13::bigint[], $14::text[], $15::bytea[],
        $16::bytea[])
        AS u(pos, id, dr, cr, amount, pending_id, ledger, code, flags, timeout, expires_at, ts, metadata,
             body_hash, hash)
), balances AS (
    UPDATE ledger_accounts a
    SET debits_pending = v.dp, debits_posted = v.dpo, credits_pending = v.cp, credits_posted = v.cpo
    FROM unnest($17::uuid[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[])
        AS v(id, dp, dpo, cp, cpo)
    WHERE a.id = v.id
)
UPDATE ledger_heads SET pos = $22, hash = $23 WHERE chain = $1
"""


class PostgresBackend:
    """One set-based statement per step on the raw asyncpg connection, inside the caller's transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._raw: Any = None

    async def raw(self) -> Any:
        if self._raw is None:
            fairy = await self.conn.get_raw_connection()
            raw: Any = fairy.driver_connection
            if not raw.is_in_transaction():
                # SQLAlchemy begins lazily; make it issue BEGIN so our statements run in its transaction.
                await self.conn.exec_driver_sql("SELECT 1")
            self._raw = raw
        return self._raw

    async def load_transfers(self, ids: Collection[UUID]) -> dict[UUID, StoredTransfer]:
        raw = await self.raw()
        if not ids:
            return {}
        rows = await raw.fetch(_SELECT_TRANSFERS + " WHERE id = ANY($1::uuid[])", list(ids))
        return {row[0]: transfer_from_row(row, json.loads(row[10]) if row[10] else None) for row in rows}

    async def lock_accounts(self, ids: Collection[UUID]) -> dict[UUID, AccountState]:
        raw = await self.raw()
        if not ids:
            return {}
        rows = await raw.fetch(_LOCK_ACCOUNTS, sorted(ids))
        return {row[0]: _account_state(row) for row in rows}

    async def load_resolutions(self, pending_ids: Collection[UUID]) -> dict[UUID, TransferKind]:
        if not pending_ids:
            return {}
        raw = await self.raw()
        rows = await raw.fetch(
            "SELECT pending_id, flags FROM ledger_transfers WHERE pending_id = ANY($1::uuid[])",
            list(pending_ids),
        )
        return {row[0]: Transfer(id=row[0], flags=TransferFlags(row[1])).kind for row in rows}

    async def read_and_lock(
        self, transfer_ids: Collection[UUID], account_ids: Collection[UUID]
    ) -> tuple[dict[UUID, StoredTransfer], dict[UUID, AccountState], Head | None]:
        raw = await self.raw()
        found: dict[UUID, StoredTransfer] = {}
        locked: dict[UUID, AccountState] = {}
        head: Head | None = None
        for row in await raw.fetch(_READ_AND_LOCK, list(transfer_ids), sorted(account_ids)):
            kind = row[0]
            if kind == 0:
                found[row[1]] = transfer_from_row(row[1:], json.loads(row[11]) if row[11] else None)
            elif kind == 1:
                locked[row[1]] = AccountState(row[1], row[6], row[8], row[13], row[14], row[15], row[16])
            else:
                head = Head(row[6], row[4], bytes(row[12]))
        return found, locked, head

    async def acquire_head(self) -> Head:
        raw = await self.raw()
        row = await raw.fetchrow(
            "SELECT chain, pos, hash FROM ledger_heads ORDER BY chain LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        if row is None:
            chains = [r[0] for r in await raw.fetch("SELECT chain FROM ledger_heads")]
            if not chains:
                await raw.execute("INSERT INTO ledger_heads (chain, pos, hash) VALUES (0, 0, $1)", genesis(0))
                chains = [0]
            row = await raw.fetchrow(
                "SELECT chain, pos, hash FROM ledger_heads WHERE chain = $1 FOR UPDATE", random.choice(chains)
            )
        return Head(row[0], row[1], bytes(row[2]))

    async def write(
        self,
        accepted: Sequence[Accepted],
        hashes: Sequence[bytes],
        states: Sequence[AccountState],
        head: Head,
    ) -> None:
        raw = await self.raw()
        transfers = [item.transfer for item in accepted]
        await raw.execute(
            _WRITE,
            head.chain,
            list(range(head.pos + 1, head.pos + 1 + len(transfers))),
            [t.id for t in transfers],
            [t.debit_account_id for t in transfers],
            [t.credit_account_id for t in transfers],
            [t.amount for t in transfers],
            [t.pending_id for t in transfers],
            [t.ledger for t in transfers],
            [t.code for t in transfers],
            [int(t.flags) for t in transfers],
            [t.timeout for t in transfers],
            [_expires_at(t) for t in transfers],
            [to_micros(transfers[0].timestamp)] * len(transfers) if transfers[0].timestamp else [],
            [json.dumps(dict(t.metadata), sort_keys=True) if t.metadata else None for t in transfers],
            [item.body for item in accepted],
            list(hashes),
            [s.id for s in states],
            [s.debits_pending for s in states],
            [s.debits_posted for s in states],
            [s.credits_pending for s in states],
            [s.credits_posted for s in states],
            head.pos + len(transfers),
            hashes[-1],
        )
