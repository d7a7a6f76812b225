"""The batch engine: applies transfers in order to locked account states, all-or-nothing per linked chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.domain import (
    AMOUNT_MAX,
    AccountFlags,
    Balance,
    CreateTransferResult,
    Transfer,
    TransferFlags,
    TransferKind,
    TransferResult,
    body_digest,
)

R = CreateTransferResult
# Plain ints: flag arithmetic on IntFlag members costs microseconds per transfer, and batches are large.
_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_BALANCING_DEBIT = int(TransferFlags.BALANCING_DEBIT)
_BALANCING_CREDIT = int(TransferFlags.BALANCING_CREDIT)
_EXPIRE = int(TransferFlags.EXPIRE)
_PHASE = _PENDING | _POST | _VOID
_RESOLVE = _POST | _VOID
_BALANCING = _BALANCING_DEBIT | _BALANCING_CREDIT
_DMNEC = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CMNED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)


@dataclass(slots=True)
class AccountState:
    """A locked account's balances, mutated while a batch is applied and written back once at the end."""

    id: UUID
    ledger: int
    flags: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    def balance(self) -> Balance:
        return Balance(self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)


@dataclass(frozen=True, slots=True)
class StoredTransfer:
    transfer: Transfer
    body: bytes


# A transfer the batch created: the stored record (resolved fields, timestamp) and the body digest.
Accepted = StoredTransfer


def _stored(
    t: Transfer, debit: UUID | None, credit: UUID | None, amount: int, ledger: int, code: int, now: datetime
) -> Transfer:
    return Transfer(
        t.id, debit, credit, amount, ledger, code, t.flags, t.pending_id, t.timeout, t.metadata, now
    )


class Batch:
    """Applies a sequence of transfers to the given working set; nothing here touches a database."""

    def __init__(
        self,
        accounts: dict[UUID, AccountState],
        existing: dict[UUID, StoredTransfer],
        resolutions: dict[UUID, TransferKind],
        now: datetime,
    ) -> None:
        self.accounts = accounts
        self.existing = existing
        self.resolutions = resolutions
        self.now = now
        self.accepted: list[Accepted] = []
        self.touched: set[UUID] = set()
        # Undo log of the open linked chain (old balances, created ids, resolved holds), replayed on failure.
        self._balances_undo: list[tuple[AccountState, tuple[int, int, int, int]]] = []
        self._created_undo: list[UUID] = []
        self._resolved_undo: list[UUID] = []

    def apply(
        self, transfers: Sequence[Transfer], *, system: bool = False, atomic: bool = False
    ) -> list[TransferResult]:
        """Apply in order; `atomic` treats the whole batch as one linked chain (all or nothing)."""
        last = len(transfers) - 1
        results: list[TransferResult] = []
        chain_start: int | None = None
        chain_failed = False
        marks = (0, 0, 0, 0)
        for index, transfer in enumerate(transfers):
            linked = bool(int(transfer.flags) & _LINKED) or (atomic and index < last)
            if chain_start is None:
                chain_start = index
                chain_failed = False
                marks = (
                    len(self._balances_undo),
                    len(self._created_undo),
                    len(self._resolved_undo),
                    len(self.accepted),
                )
            if chain_failed:
                results.append(TransferResult(transfer.id, R.LINKED_EVENT_FAILED))
            else:
                result = self._apply_one(transfer, system)
                if linked and index == len(transfers) - 1 and result.ok:
                    result = TransferResult(transfer.id, R.LINKED_EVENT_CHAIN_OPEN)
                results.append(result)
                if not result.ok:
                    chain_failed = True
                    self._rollback(*marks)
                    for earlier in range(chain_start, index):
                        results[earlier] = TransferResult(results[earlier].id, R.LINKED_EVENT_FAILED)
            if not linked:
                chain_start = None
                self._balances_undo.clear()
                self._created_undo.clear()
                self._resolved_undo.clear()
        return results

    def _rollback(self, balances: int, created: int, resolved: int, accepted: int) -> None:
        while len(self._balances_undo) > balances:
            state, old = self._balances_undo.pop()
            (state.debits_pending, state.debits_posted, state.credits_pending, state.credits_posted) = old
        while len(self._created_undo) > created:
            self.existing.pop(self._created_undo.pop(), None)
        while len(self._resolved_undo) > resolved:
            self.resolutions.pop(self._resolved_undo.pop(), None)
        del self.accepted[accepted:]

    def _save(self, state: AccountState) -> None:
        self._balances_undo.append(
            (state, (state.debits_pending, state.debits_posted, state.credits_pending, state.credits_posted))
        )
        self.touched.add(state.id)

    def _apply_one(self, t: Transfer, system: bool) -> TransferResult:
        if t.id.int == 0:
            return TransferResult(t.id, R.ID_MUST_NOT_BE_ZERO)
        flags = int(t.flags)
        if flags & _EXPIRE and not system:
            return TransferResult(t.id, R.RESERVED_FLAG)
        body = body_digest(t)
        stored = self.existing.get(t.id)
        if stored is not None:
            code = R.EXISTS if stored.body == body else R.EXISTS_WITH_DIFFERENT_FIELDS
            return TransferResult(t.id, code, stored.transfer if code is R.EXISTS else None)
        phase = flags & _PHASE
        if phase and (phase & (phase - 1)):
            return TransferResult(t.id, R.FLAGS_ARE_MUTUALLY_EXCLUSIVE)
        if flags & _BALANCING and flags & _RESOLVE:
            return TransferResult(t.id, R.FLAGS_ARE_MUTUALLY_EXCLUSIVE)
        if type(t.amount) is not int:
            return TransferResult(t.id, R.AMOUNT_MUST_BE_AN_INTEGER)
        if t.amount < 0:
            return TransferResult(t.id, R.AMOUNT_MUST_BE_POSITIVE)
        if t.amount > AMOUNT_MAX:
            return TransferResult(t.id, R.AMOUNT_TOO_LARGE)
        outcome = self._resolve(t, flags, system) if flags & _RESOLVE else self._create(t, flags)
        if isinstance(outcome, CreateTransferResult):
            return TransferResult(t.id, outcome)
        record = StoredTransfer(outcome, body)
        self.accepted.append(record)
        self.existing[t.id] = record
        self._created_undo.append(t.id)
        return TransferResult(t.id, R.OK, outcome)

    def _create(self, t: Transfer, flags: int) -> Transfer | CreateTransferResult:
        if t.pending_id is not None:
            return R.PENDING_ID_MUST_BE_ZERO
        if t.timeout < 0:
            return R.TIMEOUT_MUST_NOT_BE_NEGATIVE
        if t.timeout and not flags & _PENDING:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if t.debit_account_id is None or t.debit_account_id.int == 0:
            return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if t.credit_account_id is None or t.credit_account_id.int == 0:
            return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if t.debit_account_id.int == t.credit_account_id.int:
            return R.ACCOUNTS_MUST_BE_DIFFERENT
        if t.amount == 0:
            return R.AMOUNT_MUST_NOT_BE_ZERO
        if t.ledger == 0:
            return R.LEDGER_MUST_NOT_BE_ZERO
        if t.code == 0:
            return R.CODE_MUST_NOT_BE_ZERO
        dr = self.accounts.get(t.debit_account_id)
        if dr is None:
            return R.DEBIT_ACCOUNT_NOT_FOUND
        cr = self.accounts.get(t.credit_account_id)
        if cr is None:
            return R.CREDIT_ACCOUNT_NOT_FOUND
        if dr.ledger != cr.ledger:
            return R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
        if t.ledger != dr.ledger:
            return R.LEDGER_MUST_MATCH
        amount = t.amount
        if flags & _BALANCING_DEBIT:
            amount = min(amount, max(0, dr.credits_posted - dr.debits_posted - dr.debits_pending))
        if flags & _BALANCING_CREDIT:
            amount = min(amount, max(0, cr.debits_posted - cr.credits_posted - cr.credits_pending))
        if amount == 0:
            return R.BALANCING_AMOUNT_IS_ZERO
        if dr.debits_pending + dr.debits_posted + amount > AMOUNT_MAX:
            return R.OVERFLOWS_DEBITS
        if cr.credits_pending + cr.credits_posted + amount > AMOUNT_MAX:
            return R.OVERFLOWS_CREDITS
        if dr.flags & _DMNEC and dr.debits_pending + dr.debits_posted + amount > dr.credits_posted:
            return R.EXCEEDS_CREDITS
        if cr.flags & _CMNED and cr.credits_pending + cr.credits_posted + amount > cr.debits_posted:
            return R.EXCEEDS_DEBITS
        self._save(dr)
        self._save(cr)
        if flags & _PENDING:
            dr.debits_pending += amount
            cr.credits_pending += amount
        else:
            dr.debits_posted += amount
            cr.credits_posted += amount
        return _stored(t, t.debit_account_id, t.credit_account_id, amount, t.ledger, t.code, self.now)

    def _resolve(self, t: Transfer, flags: int, system: bool) -> Transfer | CreateTransferResult:
        if t.pending_id is None or t.pending_id.int == 0:
            return R.PENDING_ID_MUST_NOT_BE_ZERO
        if t.pending_id == t.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        if t.timeout:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        stored = self.existing.get(t.pending_id)
        if stored is None:
            return R.PENDING_TRANSFER_NOT_FOUND
        p = stored.transfer
        if not int(p.flags) & _PENDING:
            return R.PENDING_TRANSFER_NOT_PENDING
        if t.debit_account_id is not None and t.debit_account_id != p.debit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if t.credit_account_id is not None and t.credit_account_id != p.credit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if t.ledger and t.ledger != p.ledger:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
        if t.code and t.code != p.code:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        posting = bool(flags & _POST)
        if posting and t.amount > p.amount:
            return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
        if not posting and t.amount not in (0, p.amount):
            return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
        done = self.resolutions.get(p.id)
        if done is TransferKind.POST:
            return R.PENDING_TRANSFER_ALREADY_POSTED
        if done is TransferKind.VOID:
            return R.PENDING_TRANSFER_ALREADY_VOIDED
        if done is TransferKind.EXPIRE:
            return R.PENDING_TRANSFER_EXPIRED
        expires_at = p.expires_at
        overdue = expires_at is not None and self.now >= expires_at
        if system and not overdue:
            return R.PENDING_TRANSFER_NOT_EXPIRED
        if overdue and not system:
            return R.PENDING_TRANSFER_EXPIRED
        assert p.debit_account_id is not None and p.credit_account_id is not None
        dr = self.accounts[p.debit_account_id]
        cr = self.accounts[p.credit_account_id]
        amount = (t.amount or p.amount) if posting else p.amount
        self._save(dr)
        self._save(cr)
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        if posting:
            dr.debits_posted += amount
            cr.credits_posted += amount
        kind = TransferKind.EXPIRE if system else (TransferKind.POST if posting else TransferKind.VOID)
        self.resolutions[p.id] = kind
        self._resolved_undo.append(p.id)
        return _stored(t, p.debit_account_id, p.credit_account_id, amount, p.ledger, p.code, self.now)
