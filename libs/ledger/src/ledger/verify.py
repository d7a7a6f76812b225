"""End-to-end verification: hash chains, balances as the fold of the journal, sums and limits per ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncResult

from ledger import tables
from ledger.backends import transfer_from_row
from ledger.domain import AccountFlags, Transfer, TransferKind
from ledger.journal import genesis, record_hash

_MAX_PROBLEMS = 50


@dataclass
class VerificationReport:
    """What `verify` found; `ok` only when the journal, the balances and every invariant check out."""

    records: int = 0
    chains: int = 0
    accounts: int = 0
    journal_ok: bool = True
    balances_ok: bool = True
    sums_ok: bool = True
    limits_ok: bool = True
    holds_ok: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.journal_ok and self.balances_ok and self.sums_ok and self.limits_ok and self.holds_ok

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)


async def verify(conn: AsyncConnection) -> VerificationReport:
    """Walk every journal chain recomputing hashes, refold all balances and compare with the stored ones."""
    report = VerificationReport()
    heads = {
        row.chain: (row.pos, bytes(row.hash)) for row in (await conn.execute(sa.select(tables.heads))).all()
    }
    report.chains = len(heads)
    walk = _JournalWalk(report, heads)
    t = tables.transfers
    query = sa.select(
        t.c.id, t.c.debit_account_id, t.c.credit_account_id, t.c.amount, t.c.pending_id, t.c.ledger,
        t.c.code, t.c.flags, t.c.timeout, t.c.ts, t.c.metadata, t.c.body_hash, t.c.chain, t.c.pos, t.c.hash,
    ).order_by(t.c.chain, t.c.pos)  # fmt: skip
    result = await conn.stream(query.execution_options(yield_per=5000))
    # Whole partitions per await: row-by-row async iteration costs a greenlet switch per record.
    async for partition in result.partitions():
        for row in partition:
            walk.record(row)
    walk.finish()
    await _compare_accounts(conn, report, walk.balances)
    return report


class _JournalWalk:
    """Follows the journal chain by chain: positions, hashes, holds, and the balances it folds to."""

    def __init__(self, report: VerificationReport, heads: dict[int, tuple[int, bytes]]) -> None:
        self.report = report
        self.heads = heads
        self.seen_chains: set[int] = set()
        self.chain: int | None = None
        self.previous = b""
        self.pos = 0
        self.balances: dict[UUID, list[int]] = {}
        self.held: dict[UUID, int] = {}
        self.resolved: set[UUID] = set()
        self.resolutions: list[tuple[UUID, UUID, UUID, int]] = []

    def record(self, row: Any) -> None:
        report = self.report
        report.records += 1
        if row.chain != self.chain:
            self._close_chain()
            self.chain, self.previous, self.pos = row.chain, genesis(row.chain), 0
        self.pos += 1
        stored = transfer_from_row(row, row[10])
        transfer = stored.transfer
        if row.pos != self.pos:
            report.journal_ok = False
            report.problem(f"chain {self.chain}: position {row.pos} where {self.pos} was expected")
            self.pos = row.pos
        self.previous = record_hash(self.previous, row.chain, row.pos, transfer, stored.body, row.ts)
        if self.previous != bytes(row.hash):
            report.journal_ok = False
            report.problem(f"chain {self.chain} position {row.pos}: hash mismatch (transfer {transfer.id})")
        if transfer.amount <= 0:
            report.sums_ok = False
            report.problem(f"transfer {transfer.id} has a non-positive amount")
        self._fold(transfer, row.debit_account_id, row.credit_account_id)

    def _fold(self, transfer: Transfer, debit: UUID, credit: UUID) -> None:
        dr = self.balances.setdefault(debit, [0, 0, 0, 0])
        cr = self.balances.setdefault(credit, [0, 0, 0, 0])
        kind = transfer.kind
        if kind is TransferKind.POSTED:
            dr[1] += transfer.amount
            cr[3] += transfer.amount
        elif kind is TransferKind.PENDING:
            dr[0] += transfer.amount
            cr[2] += transfer.amount
            self.held[transfer.id] = transfer.amount
        else:
            assert transfer.pending_id is not None
            if transfer.pending_id in self.resolved:
                self.report.holds_ok = False
                self.report.problem(f"hold {transfer.pending_id} resolved more than once")
            self.resolved.add(transfer.pending_id)
            amount = transfer.amount if kind is TransferKind.POST else 0
            # Applied after the walk: the hold may sit in another chain that comes later.
            self.resolutions.append((transfer.pending_id, debit, credit, amount))

    def _close_chain(self) -> None:
        if self.chain is None:
            return
        self.seen_chains.add(self.chain)
        head = self.heads.get(self.chain)
        if head is None or head[0] != self.pos or head[1] != self.previous:
            self.report.journal_ok = False
            self.report.problem(
                f"chain {self.chain}: head does not match its last record (position {self.pos})"
            )

    def finish(self) -> None:
        self._close_chain()
        for chain, (pos, _hash) in self.heads.items():
            if pos and chain not in self.seen_chains:
                self.report.journal_ok = False
                self.report.problem(f"chain {chain}: head at {pos} but no records")
        for pending_id, debit, credit, amount in self.resolutions:
            if pending_id not in self.held:
                self.report.holds_ok = False
                self.report.problem(f"resolution of unknown hold {pending_id}")
                continue
            released = self.held[pending_id]
            self.balances[debit][0] -= released
            self.balances[credit][2] -= released
            self.balances[debit][1] += amount
            self.balances[credit][3] += amount


async def _rows(result: AsyncResult[Any]) -> AsyncIterator[Any]:
    async for partition in result.partitions():
        for row in partition:
            yield row


async def _compare_accounts(
    conn: AsyncConnection, report: VerificationReport, balances: dict[UUID, list[int]]
) -> None:
    sums: dict[int, list[int]] = {}
    dmnec = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    cmned = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    result = await conn.stream(sa.select(tables.accounts).execution_options(yield_per=5000))
    seen: set[UUID] = set()
    async for row in _rows(result):
        report.accounts += 1
        seen.add(row.id)
        stored = [row.debits_pending, row.debits_posted, row.credits_pending, row.credits_posted]
        folded = balances.get(row.id, [0, 0, 0, 0])
        if stored != folded:
            report.balances_ok = False
            report.problem(f"account {row.id}: stored {stored} but the journal folds to {folded}")
        total = sums.setdefault(row.ledger, [0, 0, 0, 0])
        for index in range(4):
            total[index] += stored[index]
        if min(stored) < 0:
            report.limits_ok = False
            report.problem(f"account {row.id}: negative balance {stored}")
        if row.flags & dmnec and stored[0] + stored[1] > stored[3]:
            report.limits_ok = False
            report.problem(f"account {row.id}: debits exceed credits {stored}")
        if row.flags & cmned and stored[2] + stored[3] > stored[1]:
            report.limits_ok = False
            report.problem(f"account {row.id}: credits exceed debits {stored}")
    for unknown in set(balances) - seen:
        report.balances_ok = False
        report.problem(f"journal touches unknown account {unknown}")
    for ledger_code, (dp, dpo, cp, cpo) in sorted(sums.items()):
        if dp != cp or dpo != cpo:
            report.sums_ok = False
            report.problem(f"ledger {ledger_code}: debits {dp}/{dpo} != credits {cp}/{cpo} (pending/posted)")
