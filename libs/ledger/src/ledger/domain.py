"""Ledger vocabulary: accounts, immutable transfers, flags, balances and the result codes of requests."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

AMOUNT_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AccountFlags(enum.IntFlag):
    NONE = 0
    DEBITS_MUST_NOT_EXCEED_CREDITS = 2
    CREDITS_MUST_NOT_EXCEED_DEBITS = 4
    HISTORY = 8


class TransferFlags(enum.IntFlag):
    NONE = 0
    LINKED = 1
    PENDING = 2
    POST_PENDING_TRANSFER = 4
    VOID_PENDING_TRANSFER = 8
    BALANCING_DEBIT = 16
    BALANCING_CREDIT = 32
    # Set by the ledger itself on the record that releases a timed-out hold; clients may not send it.
    EXPIRE = 1024


class TransferKind(enum.StrEnum):
    POSTED = "posted"
    PENDING = "pending"
    POST = "post"
    VOID = "void"
    EXPIRE = "expire"


class CreateAccountResult(enum.StrEnum):
    OK = "ok"
    EXISTS = "exists"
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    ID_MUST_NOT_BE_ZERO = "id_must_not_be_zero"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    LEDGER_MUST_NOT_BE_ZERO = "ledger_must_not_be_zero"
    CODE_MUST_NOT_BE_ZERO = "code_must_not_be_zero"
    BALANCES_MUST_BE_ZERO = "balances_must_be_zero"


class CreateTransferResult(enum.StrEnum):
    OK = "ok"
    EXISTS = "exists"
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    ID_MUST_NOT_BE_ZERO = "id_must_not_be_zero"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    RESERVED_FLAG = "reserved_flag"
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = "debit_account_id_must_not_be_zero"
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = "credit_account_id_must_not_be_zero"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    PENDING_ID_MUST_BE_ZERO = "pending_id_must_be_zero"
    PENDING_ID_MUST_NOT_BE_ZERO = "pending_id_must_not_be_zero"
    PENDING_ID_MUST_BE_DIFFERENT = "pending_id_must_be_different"
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = "timeout_reserved_for_pending_transfer"
    TIMEOUT_MUST_NOT_BE_NEGATIVE = "timeout_must_not_be_negative"
    AMOUNT_MUST_BE_AN_INTEGER = "amount_must_be_an_integer"
    AMOUNT_MUST_NOT_BE_ZERO = "amount_must_not_be_zero"
    AMOUNT_MUST_BE_POSITIVE = "amount_must_be_positive"
    AMOUNT_TOO_LARGE = "amount_too_large"
    LEDGER_MUST_NOT_BE_ZERO = "ledger_must_not_be_zero"
    CODE_MUST_NOT_BE_ZERO = "code_must_not_be_zero"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = "accounts_must_have_the_same_ledger"
    LEDGER_MUST_MATCH = "ledger_must_match"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = "pending_transfer_has_different_debit_account_id"
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = "pending_transfer_has_different_credit_account_id"
    PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = "pending_transfer_has_different_ledger"
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = "pending_transfer_has_different_code"
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = "pending_transfer_has_different_amount"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    PENDING_TRANSFER_NOT_EXPIRED = "pending_transfer_not_expired"
    BALANCING_AMOUNT_IS_ZERO = "balancing_amount_is_zero"
    OVERFLOWS_DEBITS = "overflows_debits"
    OVERFLOWS_CREDITS = "overflows_credits"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"


SUCCESS_CODES = frozenset({CreateTransferResult.OK, CreateTransferResult.EXISTS})


@dataclass(frozen=True, slots=True)
class Balance:
    """The four running totals of an account; `available` is what a never-negative account may still spend."""

    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def net_posted(self) -> int:
        return self.credits_posted - self.debits_posted

    def __add__(self, other: Balance) -> Balance:
        return Balance(
            self.debits_pending + other.debits_pending,
            self.debits_posted + other.debits_posted,
            self.credits_pending + other.credits_pending,
            self.credits_posted + other.credits_posted,
        )


@dataclass(frozen=True, slots=True)
class Account:
    """An account on one ledger (unit); balances are maintained by the ledger and read back from it."""

    id: UUID
    ledger: int
    code: int
    flags: AccountFlags = AccountFlags.NONE
    tenant: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    balance: Balance = field(default_factory=Balance)
    timestamp: datetime | None = None

    def same_fields(self, other: Account) -> bool:
        return (
            self.ledger == other.ledger
            and self.code == other.code
            and int(self.flags) == int(other.flags)
            and self.tenant == other.tenant
            and dict(self.metadata) == dict(other.metadata)
        )


@dataclass(frozen=True, slots=True)
class Transfer:
    """An immutable movement of `amount` from the debit to the credit account; the id is the idempotency key.

    For posting or voiding a pending transfer, the account ids, ledger and code may be left out (taken from
    the pending transfer) and an amount of 0 means the full held amount. For balancing transfers the amount
    is an upper bound. `timestamp` is assigned by the ledger.
    """

    id: UUID
    debit_account_id: UUID | None = None
    credit_account_id: UUID | None = None
    amount: int = 0
    ledger: int = 0
    code: int = 0
    flags: TransferFlags = TransferFlags.NONE
    pending_id: UUID | None = None
    timeout: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None

    @classmethod
    def post(
        cls, id: UUID, pending_id: UUID, amount: int = 0, *, metadata: Mapping[str, Any] | None = None
    ) -> Transfer:
        return cls(
            id=id,
            pending_id=pending_id,
            amount=amount,
            flags=TransferFlags.POST_PENDING_TRANSFER,
            metadata=metadata or {},
        )

    @classmethod
    def void(cls, id: UUID, pending_id: UUID, *, metadata: Mapping[str, Any] | None = None) -> Transfer:
        return cls(
            id=id, pending_id=pending_id, flags=TransferFlags.VOID_PENDING_TRANSFER, metadata=metadata or {}
        )

    @property
    def kind(self) -> TransferKind:
        flags = int(self.flags)
        if flags & 1024:
            return TransferKind.EXPIRE
        if flags & 8:
            return TransferKind.VOID
        if flags & 4:
            return TransferKind.POST
        if flags & 2:
            return TransferKind.PENDING
        return TransferKind.POSTED

    @property
    def expires_at(self) -> datetime | None:
        if not (self.flags & TransferFlags.PENDING) or self.timeout <= 0 or self.timestamp is None:
            return None
        return self.timestamp + timedelta(seconds=self.timeout)


@dataclass(frozen=True, slots=True)
class AccountResult:
    id: UUID
    code: CreateAccountResult
    account: Account | None = None

    @property
    def ok(self) -> bool:
        return self.code in (CreateAccountResult.OK, CreateAccountResult.EXISTS)


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The outcome of one transfer: `transfer` is the stored record for `ok` and an idempotent `exists`."""

    id: UUID
    code: CreateTransferResult
    transfer: Transfer | None = None

    @property
    def ok(self) -> bool:
        return self.code in SUCCESS_CODES


@dataclass(frozen=True, slots=True)
class Entry:
    """One transfer as seen from one account: its effect and the account's balance right after it."""

    transfer: Transfer
    effect: Balance
    balance: Balance


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def metadata_json(metadata: Mapping[str, Any]) -> str | None:
    """Canonical JSON of metadata (sorted keys), or None when there is none, so equal bodies hash equally."""
    if not metadata:
        return None
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), default=str)


def body_digest(transfer: Transfer) -> bytes:
    """Digest of what the client sent, compared when an id comes back: equal is a replay, else a conflict."""
    t = transfer
    debit = t.debit_account_id.int if t.debit_account_id is not None else ""
    credit = t.credit_account_id.int if t.credit_account_id is not None else ""
    pending = t.pending_id.int if t.pending_id is not None else ""
    meta = metadata_json(t.metadata) or "" if t.metadata else ""
    text = f"{t.id.int}|{debit}|{credit}|{t.amount}|{t.ledger}|{t.code}|{int(t.flags)}|{pending}|{t.timeout}|"
    text += meta
    return hashlib.blake2b(text.encode(), digest_size=16).digest()
