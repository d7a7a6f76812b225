"""The inbox: which events a consumer has applied, claimed in the same transaction as the handler's effect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import String, bindparam, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from eventbus.tables import inbox


async def claim(session: AsyncSession, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """Insert the ids into the inbox; returns those that were new (the others were applied before)."""
    if not event_ids:
        return set()
    now = datetime.now(UTC)
    if session.get_bind().dialect.name == "postgresql":
        # One statement with one array parameter, whatever the batch size (one prepared plan, no row loop).
        ids = func.unnest(bindparam("ids", list(event_ids), type_=postgresql.ARRAY(String)))
        rows = select(literal(consumer, String), ids, literal(now, inbox.c.processed_at.type))
        stmt = (
            postgresql.insert(inbox)
            .from_select(["consumer", "event_id", "processed_at"], rows)
            .on_conflict_do_nothing()
            .returning(inbox.c.event_id)
        )
        return set((await session.execute(stmt)).scalars())
    values = [{"consumer": consumer, "event_id": event_id, "processed_at": now} for event_id in event_ids]
    # One cached statement for many rows (SQLAlchemy batches it into multi-row INSERTs with RETURNING).
    lite = sqlite.insert(inbox).on_conflict_do_nothing().returning(inbox.c.event_id)
    return set((await session.execute(lite, values)).scalars())
