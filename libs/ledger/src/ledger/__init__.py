"""Double-entry ledger: accounts, immutable transfers (single, linked, two-phase, balancing), a journal."""

from ledger.domain import (
    AMOUNT_MAX,
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
)
from ledger.sharding import ShardedAccount
from ledger.store import Ledger, LedgerSession, create_engine, expiry_id, install_heads, is_retryable
from ledger.tables import metadata
from ledger.verify import VerificationReport, verify

__all__ = [
    "AMOUNT_MAX",
    "Account",
    "AccountFlags",
    "AccountResult",
    "Balance",
    "CreateAccountResult",
    "CreateTransferResult",
    "Entry",
    "Ledger",
    "LedgerSession",
    "ShardedAccount",
    "Transfer",
    "TransferFlags",
    "TransferKind",
    "TransferResult",
    "VerificationReport",
    "create_engine",
    "expiry_id",
    "install_heads",
    "is_retryable",
    "metadata",
    "verify",
]
