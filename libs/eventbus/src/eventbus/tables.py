"""The outbox, inbox and dead-letter tables every service keeps in its own database next to its own tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# BigInteger on PostgreSQL, but INTEGER on SQLite so that the column is the rowid alias and autoincrements.
_Seq = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "outbox",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("event_id", String(255), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_unsent", "sent_at", "seq"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(255), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", _Seq, primary_key=True, autoincrement=True),
    Column("consumer", String(255), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("envelope", JSON, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("replayed_at", DateTime(timezone=True), nullable=True),
    Index("ix_dead_letters_consumer", "consumer", "id"),
)
