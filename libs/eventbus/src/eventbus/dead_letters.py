"""Listing and replaying dead letters: a replay re-runs the consumer's handler through the same inbox path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import registry
from contracts.envelope import Envelope
from eventbus.consumer import Consumer
from eventbus.tables import dead_letters


class ReplayFailed(Exception):
    """The dead letter still fails; its row now holds the new error."""


@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer: str
    event_id: str
    topic: str
    envelope: dict[str, Any]
    error: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None


async def list_dead_letters(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    consumer: str | None = None,
    include_replayed: bool = False,
    limit: int = 100,
) -> list[DeadLetter]:
    stmt = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
    if consumer is not None:
        stmt = stmt.where(dead_letters.c.consumer == consumer)
    if not include_replayed:
        stmt = stmt.where(dead_letters.c.replayed_at.is_(None))
    async with sessionmaker() as session:
        rows = (await session.execute(stmt)).mappings().all()
    return [DeadLetter(**row) for row in rows]


async def replay(consumer: Consumer, dead_letter_id: int) -> bool:
    """Apply a dead letter now; True when applied, False when the inbox says it was applied before.

    Raises ReplayFailed (and records the error) when it fails again; raises LookupError for an unknown id.
    """
    sessionmaker = consumer.uow_factory.sessionmaker
    async with sessionmaker() as session:
        row = (
            (
                await session.execute(
                    select(dead_letters).where(
                        dead_letters.c.id == dead_letter_id, dead_letters.c.consumer == consumer.name
                    )
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise LookupError(f"no dead letter {dead_letter_id} for {consumer.name}")
    try:
        envelope = Envelope.model_validate(row["envelope"])
        applied = await consumer.apply_once(envelope, registry.decode(envelope))
    except Exception as exc:
        await _record(
            sessionmaker, dead_letter_id, error=f"{type(exc).__name__}: {exc}", attempts=row["attempts"] + 1
        )
        raise ReplayFailed(str(exc)) from exc
    await _record(sessionmaker, dead_letter_id, replayed_at=datetime.now(UTC))
    return applied


async def _record(sessionmaker: async_sessionmaker[AsyncSession], dead_letter_id: int, **values: Any) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(**values)
        )
