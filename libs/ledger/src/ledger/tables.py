"""SQLAlchemy tables of the ledger; a service creates them in its own database next to its own tables."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Amounts and balances are BIGINT minor units; timestamps are microseconds since the epoch (UTC), portable.
accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("ledger", sa.Integer, nullable=False),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("flags", sa.Integer, nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
    sa.Column("metadata", sa.JSON, nullable=True),
    sa.Column("debits_pending", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("debits_posted", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("credits_pending", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("credits_posted", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("ts", sa.BigInteger, nullable=False),
    # The database refuses a negative never-negative account even if application code were wrong.
    sa.CheckConstraint(
        "(flags & 2) = 0 OR debits_pending + debits_posted <= credits_posted", name="ck_ledger_accounts_dmnec"
    ),
    sa.CheckConstraint(
        "(flags & 4) = 0 OR credits_pending + credits_posted <= debits_posted",
        name="ck_ledger_accounts_cmned",
    ),
    sa.CheckConstraint(
        "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
        name="ck_ledger_accounts_nonnegative",
    ),
)

transfers = sa.Table(
    "ledger_transfers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("chain", sa.Integer, nullable=False),
    sa.Column("pos", sa.BigInteger, nullable=False),
    sa.Column("debit_account_id", sa.Uuid, nullable=False),
    sa.Column("credit_account_id", sa.Uuid, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("pending_id", sa.Uuid, nullable=True),
    sa.Column("ledger", sa.Integer, nullable=False),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("flags", sa.Integer, nullable=False),
    sa.Column("timeout", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=True),
    sa.Column("body_hash", sa.LargeBinary, nullable=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
    sa.CheckConstraint("amount > 0", name="ck_ledger_transfers_amount_positive"),
    sa.Index("ix_ledger_transfers_debit", "debit_account_id", "ts"),
    sa.Index("ix_ledger_transfers_credit", "credit_account_id", "ts"),
    # At most one post, void or expiry per hold: the database backs "resolves exactly once".
    sa.Index(
        "ux_ledger_transfers_pending_id",
        "pending_id",
        unique=True,
        postgresql_where=sa.text("pending_id IS NOT NULL"),
        sqlite_where=sa.text("pending_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_ledger_transfers_expires_at",
        "expires_at",
        postgresql_where=sa.text("expires_at IS NOT NULL"),
        sqlite_where=sa.text("expires_at IS NOT NULL"),
    ),
)

# One row per journal chain: length and last hash. Several chains let concurrent batches append in parallel.
heads = sa.Table(
    "ledger_heads",
    metadata,
    sa.Column("chain", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pos", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
)


def _hot_updates_ddl() -> None:
    """Free space in account pages lets balance updates stay heap-only (HOT): no index writes per update."""
    sa.event.listen(
        accounts,
        "after_create",
        sa.DDL(  # type: ignore[no-untyped-call]
            "ALTER TABLE ledger_accounts SET (fillfactor = 50)"
        ).execute_if(dialect="postgresql"),
    )


def _immutable_transfers_ddl() -> None:
    """Triggers refusing UPDATE and DELETE of journal rows, so history can only grow."""
    sa.event.listen(
        transfers,
        "after_create",
        sa.DDL(  # type: ignore[no-untyped-call]
            "CREATE OR REPLACE FUNCTION ledger_transfers_immutable() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'ledger transfers are immutable'; END $$"
        ).execute_if(dialect="postgresql"),
    )
    sa.event.listen(
        transfers,
        "after_create",
        sa.DDL(  # type: ignore[no-untyped-call]
            "CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers "
            "FOR EACH ROW EXECUTE FUNCTION ledger_transfers_immutable()"
        ).execute_if(dialect="postgresql"),
    )
    for action in ("UPDATE", "DELETE"):
        sa.event.listen(
            transfers,
            "after_create",
            sa.DDL(  # type: ignore[no-untyped-call]
                f"CREATE TRIGGER ledger_transfers_no_{action.lower()} BEFORE {action} ON ledger_transfers "
                "BEGIN SELECT RAISE(ABORT, 'ledger transfers are immutable'); END"
            ).execute_if(dialect="sqlite"),
        )


_hot_updates_ddl()
_immutable_transfers_ddl()
