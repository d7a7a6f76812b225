"""The hash-chained journal and the fold of transfers into balances, pure so every store verifies alike."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from uuid import UUID

from ledger.domain import Balance, Transfer, TransferKind, metadata_json


def genesis(chain: int) -> bytes:
    return hashlib.sha256(f"cityblocks-ledger|genesis|{chain}".encode()).digest()


def record_hash(previous: bytes, chain: int, pos: int, transfer: Transfer, body: bytes, ts: int) -> bytes:
    """Hash of one journal record (`ts`: its timestamp in microseconds) chained to the previous hash."""
    t = transfer
    assert t.debit_account_id is not None and t.credit_account_id is not None
    pending = t.pending_id.int if t.pending_id is not None else ""
    meta = metadata_json(t.metadata) or "" if t.metadata else ""
    text = (
        f"{chain}|{pos}|{t.id.int}|{t.debit_account_id.int}|{t.credit_account_id.int}|{t.amount}|{pending}|"
        f"{t.ledger}|{t.code}|{int(t.flags)}|{t.timeout}|{ts}|{meta}|"
    )
    return hashlib.sha256(previous + body + text.encode()).digest()


def effect(transfer: Transfer, held: int) -> tuple[Balance, Balance]:
    """What a stored transfer does to its debit and its credit account; `held` is its hold's amount."""
    kind = transfer.kind
    amount = transfer.amount
    if kind is TransferKind.POSTED:
        return Balance(debits_posted=amount), Balance(credits_posted=amount)
    if kind is TransferKind.PENDING:
        return Balance(debits_pending=amount), Balance(credits_pending=amount)
    if kind is TransferKind.POST:
        return (
            Balance(debits_pending=-held, debits_posted=amount),
            Balance(credits_pending=-held, credits_posted=amount),
        )
    return Balance(debits_pending=-held), Balance(credits_pending=-held)


def held_amounts(transfers: Iterable[Transfer]) -> dict[UUID, int]:
    return {t.id: t.amount for t in transfers if t.kind is TransferKind.PENDING}


def fold(transfers: Iterable[Transfer]) -> dict[UUID, Balance]:
    """Balances of every account touched, rebuilt from the transfers alone (order does not matter)."""
    records = list(transfers)
    held = held_amounts(records)
    balances: dict[UUID, Balance] = {}
    zero = Balance()
    for transfer in records:
        debit, credit = effect(transfer, held.get(transfer.pending_id, 0) if transfer.pending_id else 0)
        assert transfer.debit_account_id is not None and transfer.credit_account_id is not None
        balances[transfer.debit_account_id] = balances.get(transfer.debit_account_id, zero) + debit
        balances[transfer.credit_account_id] = balances.get(transfer.credit_account_id, zero) + credit
    return balances
