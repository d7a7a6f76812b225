"""Tables of the mobility-credit service; the ledger's tables (`ledger.metadata`) share its database."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Amounts are BIGINT euro cents; times are aware UTC datetimes.
schemes = sa.Table(
    "schemes",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(16), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("tenant", "name", name="uq_schemes_tenant_name"),
)

providers = sa.Table(
    "providers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(16), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kbo", sa.String(12), nullable=False),
    sa.Column("iban", sa.String(34), nullable=False),
    sa.Column("bic", sa.String(11), nullable=True),
    sa.Column("modes", sa.JSON, nullable=False),
    # The login (identity provider subject or `provider_id` claim) that acts for this provider.
    sa.Column("operator", sa.String(200), nullable=False, index=True),
    sa.Column("shards", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(16), nullable=False),
    sa.Column("scheme_id", sa.Uuid, nullable=False),
    sa.Column("citizen_id", sa.String(200), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("valid_from", sa.Date, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("expired_cents", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("scheme_id", "citizen_id", "period_start", name="uq_grants_once_per_period"),
    sa.Index("ix_grants_citizen", "tenant", "citizen_id"),
    sa.Index("ix_grants_expiry", "expires_on", "expired_cents"),
)


def _trip_columns() -> list[sa.Column[object]]:
    """What holds and trips both record about the journey (the OSLO `Consumptie`'s type and place)."""
    return [
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("place_name", sa.String(200), nullable=True),
        sa.Column("lat", sa.Float, nullable=True),
        sa.Column("lon", sa.Float, nullable=True),
    ]


trips = sa.Table(
    "trips",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(16), nullable=False),
    sa.Column("provider_id", sa.Uuid, nullable=False),
    sa.Column("citizen_id", sa.String(200), nullable=False),
    sa.Column("scheme_id", sa.Uuid, nullable=False),
    sa.Column("grant_id", sa.Uuid, nullable=False),
    *_trip_columns(),
    sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("total_cents", sa.BigInteger, nullable=False),
    sa.Column("city_share_cents", sa.BigInteger, nullable=False),
    sa.Column("refunded_cents", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("advantage", sa.String(200), nullable=True),
    sa.Column("hold_id", sa.Uuid, nullable=True),
    sa.Column("payable_account_id", sa.Uuid, nullable=False),
    sa.Column("settlement_id", sa.Uuid, nullable=True),
    sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_trips_citizen", "tenant", "citizen_id", "paid_at"),
    sa.Index("ix_trips_provider", "provider_id", "paid_at"),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(16), nullable=False),
    sa.Column("provider_id", sa.Uuid, nullable=False),
    sa.Column("citizen_id", sa.String(200), nullable=False),
    sa.Column("scheme_id", sa.Uuid, nullable=False),
    sa.Column("grant_id", sa.Uuid, nullable=False),
    *_trip_columns(),
    sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("estimated_total_cents", sa.BigInteger, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("payable_account_id", sa.Uuid, nullable=False),
    sa.Column("usage_keys", sa.JSON, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("trip_id", sa.Uuid, nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_holds_open", "status", "expires_at"),
    sa.Index("ix_holds_citizen", "tenant", "citizen_id"),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(16), nullable=False),
    sa.Column("trip_id", sa.Uuid, nullable=False, index=True),
    sa.Column("provider_id", sa.Uuid, nullable=False),
    sa.Column("citizen_id", sa.String(200), nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("payable_account_id", sa.Uuid, nullable=False),
    sa.Column("settlement_id", sa.Uuid, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# City share used per citizen, scheme and cap window; updated under a row lock so caps hold under concurrency.
usage = sa.Table(
    "cap_usage",
    metadata,
    sa.Column("citizen_id", sa.String(200), primary_key=True),
    sa.Column("scheme_id", sa.Uuid, primary_key=True),
    sa.Column("window", sa.String(40), primary_key=True),
    sa.Column("used_cents", sa.BigInteger, nullable=False),
    sa.CheckConstraint("used_cents >= 0", name="ck_cap_usage_not_negative"),
)

settlement_runs = sa.Table(
    "settlement_runs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant", sa.String(16), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("message_id", sa.String(35), nullable=False),
    sa.Column("total_cents", sa.BigInteger, nullable=False),
    sa.Column("transactions", sa.Integer, nullable=False),
    sa.Column("pain001", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("run_id", sa.Uuid, nullable=False, index=True),
    sa.Column("tenant", sa.String(16), nullable=False),
    sa.Column("provider_id", sa.Uuid, nullable=False, index=True),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("trips", sa.Integer, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("per_mode", sa.JSON, nullable=False),
    sa.Column("end_to_end_id", sa.String(35), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# The stored answer to a provider's request, replayed when the same Idempotency-Key comes back.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(300), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
