"""The inbox: which events a consumer has applied, claimed in the same transaction as the handler's effect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from eventbus.tables import inbox


async def claim(session: AsyncSession, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """Insert the ids into the inbox; returns those that were new (the others were applied before)."""
    if not event_ids:
        return set()
    now = datetime.now(UTC)
    rows = [{"consumer": consumer, "event_id": event_id, "processed_at": now} for event_id in event_ids]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One cached statement for many rows (SQLAlchemy batches it into multi-row INSERTs with RETURNING).
    stmt = insert(inbox).on_conflict_do_nothing().returning(inbox.c.event_id)
    return set((await session.execute(stmt, rows)).scalars())
