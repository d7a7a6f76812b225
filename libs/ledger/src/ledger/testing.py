"""Helpers for tests of code using the ledger: a hand-moved clock, shortcuts for accounts and transfers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from ledger.domain import Account, AccountFlags, Transfer, TransferResult
from ledger.store import Ledger

EUR = 978
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class FakeClock:
    """A clock tests move by hand, so timeouts and "as of" moments are exact."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


async def open_accounts(
    ledger: Ledger, count: int, flags: AccountFlags = AccountFlags.NONE, ledger_code: int = EUR
) -> list[UUID]:
    accounts = [Account(id=uuid4(), ledger=ledger_code, code=1, flags=flags) for _ in range(count)]
    results = await ledger.create_accounts(accounts)
    assert all(r.ok for r in results), results
    return [a.id for a in accounts]


async def fund(ledger: Ledger, source: UUID, target: UUID, amount: int) -> None:
    [result] = await ledger.create_transfers([transfer(source, target, amount)])
    assert result.ok, result


def transfer(debit: UUID, credit: UUID, amount: int, **fields: Any) -> Transfer:
    """A transfer on the EUR ledger with code 1 and a fresh id unless given."""
    fields.setdefault("id", uuid4())
    fields.setdefault("ledger", EUR)
    fields.setdefault("code", 1)
    return Transfer(debit_account_id=debit, credit_account_id=credit, amount=amount, **fields)


def codes(results: Sequence[TransferResult]) -> list[str]:
    return [str(r.code) for r in results]
