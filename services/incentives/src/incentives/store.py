"""Tables of the incentives service (next to the ledger's) and the few queries more than one handler needs."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from incentives import caches, domain
from servicekit.db import UtcDateTime

metadata = sa.MetaData()


coin_types = sa.Table(
    "coin_types",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("issuer_tenant", sa.String(64), nullable=False, index=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("member_tenants", sa.JSON, nullable=False),
    sa.Column("ledger", sa.Integer, nullable=False, unique=True),
    sa.Column("rate_coins", sa.Integer, nullable=False),
    sa.Column("rate_cents", sa.Integer, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

merchants = sa.Table(
    "merchants",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kbo", sa.String(12), nullable=False, unique=True),
    sa.Column("iban", sa.String(34), nullable=False),
    sa.Column("place", sa.String(300), nullable=False, server_default=""),
    sa.Column("owner_subject", sa.String(200), nullable=False, index=True),
    sa.Column("coin_type_ids", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("sponsor", sa.String(200), nullable=False),
    sa.Column("coin_type_id", sa.Uuid, sa.ForeignKey("coin_types.id"), nullable=False),
    sa.Column("budget_coins", sa.BigInteger, nullable=False),
    sa.Column("valid_from", UtcDateTime, nullable=False),
    sa.Column("valid_until", UtcDateTime, nullable=True),
    # Municipalities whose events count for this campaign (empty: where its coin is accepted).
    sa.Column("audience_tenants", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # active | ended
    sa.Column("created_at", UtcDateTime, nullable=False),
)

rules = sa.Table(
    "rules",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("campaign_id", sa.Uuid, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
    sa.Column("trigger", sa.String(200), nullable=False, index=True),
    sa.Column("condition", sa.String(1000), nullable=False),
    sa.Column("beneficiary_kind", sa.String(20), nullable=False),
    sa.Column("beneficiary_field", sa.String(200), nullable=True),
    sa.Column("reward_kind", sa.String(20), nullable=False),
    sa.Column("reward_coins", sa.BigInteger, nullable=False),
    sa.Column("percent_bps", sa.Integer, nullable=False),
    sa.Column("base_field", sa.String(200), nullable=True),
    sa.Column("limit_window", sa.String(10), nullable=True),
    sa.Column("limit_coins", sa.BigInteger, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

issuances = sa.Table(
    "issuances",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("campaign_id", sa.Uuid, nullable=False, index=True),
    sa.Column("rule_id", sa.Uuid, nullable=False),
    sa.Column("trigger_id", sa.String(200), nullable=False),
    sa.Column("beneficiary_kind", sa.String(20), nullable=False),
    sa.Column("beneficiary_id", sa.String(200), nullable=False, index=True),
    sa.Column("coin_type_id", sa.Uuid, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("issued_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("trigger_id", "rule_id", name="uq_issuances_trigger_rule"),
)

# Coins granted to a member per campaign and window; the row is locked while a grant is decided.
limit_usage = sa.Table(
    "limit_usage",
    metadata,
    sa.Column("campaign_id", sa.Uuid, primary_key=True),
    sa.Column("member_id", sa.String(200), primary_key=True),
    sa.Column("window_key", sa.String(30), primary_key=True),
    sa.Column("coins", sa.BigInteger, nullable=False),
)

wallets = sa.Table(
    "wallets",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("citizen_id", sa.String(200), nullable=False, index=True),
    sa.Column("coin_type_id", sa.Uuid, nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

redemptions = sa.Table(
    "redemptions",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("qr_nonce", sa.Uuid, nullable=False, unique=True),
    sa.Column("wallet_account_id", sa.Uuid, nullable=False),
    sa.Column("citizen_id", sa.String(200), nullable=False),
    sa.Column("merchant_id", sa.Uuid, nullable=False),
    sa.Column("coin_type_id", sa.Uuid, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("refunded", sa.BigInteger, nullable=False),
    sa.Column("redeemed_at", UtcDateTime, nullable=False),
    sa.Index("ix_redemptions_wallet_time", "wallet_account_id", "redeemed_at"),
    sa.Index("ix_redemptions_merchant_time", "merchant_id", "redeemed_at"),
)

claims = sa.Table(
    "claims",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("campaign_id", sa.Uuid, nullable=False, index=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("citizen_id", sa.String(200), nullable=False, index=True),
    sa.Column("evidence", sa.String(2000), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # submitted | approved | rejected
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("submitted_at", UtcDateTime, nullable=False),
    sa.Column("decided_at", UtcDateTime, nullable=True),
)

settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("batch_id", sa.Uuid, nullable=False, index=True),
    sa.Column("merchant_id", sa.Uuid, nullable=False, index=True),
    sa.Column("coin_type_id", sa.Uuid, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("coins", sa.BigInteger, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("payment_information_id", sa.String(35), nullable=False),
    sa.Column("settled_at", UtcDateTime, nullable=False),
)

settlement_batches = sa.Table(
    "settlement_batches",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("pain001", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "period_start", "period_end", name="uq_settlement_batches_period"),
)

expiry_notices = sa.Table(
    "expiry_notices",
    metadata,
    sa.Column("coin_type_id", sa.Uuid, primary_key=True),
    sa.Column("wallet_account_id", sa.Uuid, primary_key=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("noticed_at", UtcDateTime, nullable=False),
)


def upsert(session: AsyncSession) -> Any:
    """The dialect's INSERT with ON CONFLICT support."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def insert_ignore(session: AsyncSession, table: sa.Table, row: Mapping[str, Any]) -> bool:
    """Insert unless the key exists; True when this call inserted the row."""
    stmt = upsert(session)(table).values(**row).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


def one_of(session: AsyncSession, column: Any, values: Collection[Any]) -> Any:
    """`column IN values`; on PostgreSQL one array parameter, so one prepared plan whatever the count."""
    return any_of(session.get_bind().dialect.name, column, values=values)


def any_of(dialect: str, column: Any, name: str | None = None, values: Collection[Any] | None = None) -> Any:
    """`column IN values` for `dialect`; without values, a parameter `name` given at execution (a statement
    built once and run many times)."""
    value: dict[str, Any] = {} if values is None else {"value": list(values)}
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type), **value))
    return column.in_(sa.bindparam(name, expanding=True, **value))


async def insert_many(session: AsyncSession, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows; on PostgreSQL as one statement over column arrays instead of one execution per row."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        await session.execute(sa.insert(table), list(rows))
        return
    names = list(rows[0])
    arrays = [
        sa.func.unnest(
            sa.bindparam(name, [row[name] for row in rows], type_=postgresql.ARRAY(table.c[name].type))
        )
        for name in names
    ]
    await session.execute(sa.insert(table).from_select(names, sa.select(*arrays)))


async def load_merchants(session: AsyncSession, ids: Collection[UUID]) -> dict[UUID, Any]:
    """Merchant rows by id, those found remembered per database (a merchant row never changes)."""
    known = caches.of(session).merchants
    missing = [i for i in ids if i not in known]
    if missing:
        rows = (
            await session.execute(sa.select(merchants).where(one_of(session, merchants.c.id, missing)))
        ).all()
        known.update((row.id, row) for row in rows)
    return {i: known[i] for i in ids if i in known}


def coin_type_of(row: Any) -> domain.CoinType:
    return domain.CoinType(
        id=row.id,
        code=row.code,
        name=row.name,
        issuer_tenant=row.issuer_tenant,
        scope=domain.Scope(row.scope),
        member_tenants=frozenset(row.member_tenants),
        ledger=row.ledger,
        rate_coins=row.rate_coins,
        rate_cents=row.rate_cents,
        expires_at=row.expires_at,
    )


async def load_coin_type(session: AsyncSession, coin_type_id: UUID) -> domain.CoinType:
    """A coin type (they never change once created, so they are remembered per database)."""
    known = caches.of(session).coin_types
    if coin_type_id in known:
        return known[coin_type_id]
    row = (await session.execute(sa.select(coin_types).where(coin_types.c.id == coin_type_id))).first()
    if row is None:
        raise domain.NotFound("no such coin type")
    known[coin_type_id] = coin = coin_type_of(row)
    return coin


async def load_row(session: AsyncSession, table: sa.Table, key: Any, what: str, *, lock: bool = False) -> Any:
    query = sa.select(table).where(table.primary_key.columns.values()[0] == key)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise domain.NotFound(f"no such {what}")
    return row


async def merchant_of_owner(session: AsyncSession, subject: str) -> Sequence[Any]:
    query = sa.select(merchants).where(merchants.c.owner_subject == subject).order_by(merchants.c.name)
    return (await session.execute(query)).all()
