"""The live event feed: every contract event lands in a bounded table that the SSE stream follows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import registry
from contracts.base import Event
from contracts.envelope import Envelope
from eventbus import UnitOfWork
from servicekit.service import EventHandler

FEED_SIZE = 1_000
POLL_S = 0.5
HEARTBEAT_S = 15.0
# A stream ends after this long and the browser reconnects at once, resuming after Last-Event-ID: an open
# stream would otherwise hold a graceful server shutdown (Ctrl-C on `make run`) until the browser leaves.
STREAM_S = 20.0

metadata = MetaData()
feed_events = Table(
    "feed_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(100), nullable=False),
    Column("type", String(200), nullable=False),
    Column("topic", String(200), nullable=False),
    Column("tenant", String(20), nullable=True, index=True),
    Column("subject", String(200), nullable=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("data", JSON, nullable=False),
)


async def on_any_event(uow: UnitOfWork, event: Event, envelope: Envelope) -> None:
    """Keep the event for the feed; older ones beyond FEED_SIZE are dropped in the same transaction."""
    await uow.session.execute(
        insert(feed_events).values(
            event_id=envelope.id,
            type=envelope.type,
            topic=envelope.topic,
            tenant=envelope.tenant,
            subject=envelope.subject,
            time=envelope.time,
            data=envelope.data,
        )
    )
    newest = (await uow.session.execute(select(func.max(feed_events.c.id)))).scalar_one()
    await uow.session.execute(delete(feed_events).where(feed_events.c.id <= newest - FEED_SIZE))


class EveryEvent(Mapping[type[Event], EventHandler]):
    """Subscriptions to every event in the contracts catalogue, looked up when the consumer starts."""

    def _all(self) -> dict[type[Event], EventHandler]:
        return dict.fromkeys(registry.catalogue().values(), on_any_event)

    def __getitem__(self, key: type[Event]) -> EventHandler:
        return self._all()[key]

    def __iter__(self) -> Iterator[type[Event]]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


SUBSCRIPTIONS = EveryEvent()


def as_dict(row: Any) -> dict[str, Any]:
    when: datetime = row.time if row.time.tzinfo else row.time.replace(tzinfo=UTC)
    return {
        "id": row.id,
        "event_id": row.event_id,
        "type": row.type,
        "name": short_type(row.type),
        "service": service_of(row.type),
        "topic": row.topic,
        "tenant": row.tenant,
        "subject": row.subject,
        "time": when.isoformat(),
        "data": row.data,
    }


def short_type(event_type: str) -> str:
    """`be.cityblocks.market.StallsAllocated.v1` → `StallsAllocated`."""
    parts = event_type.split(".")
    return parts[-2] if len(parts) >= 2 else event_type


def service_of(event_type: str) -> str:
    parts = event_type.split(".")
    return parts[2] if len(parts) > 3 else ""


async def recent(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant: str,
    *,
    after: int = 0,
    services: frozenset[str] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The tenant's events after id `after`, oldest first (or the newest `limit` when `after` is 0)."""
    stmt = select(feed_events).where(feed_events.c.tenant == tenant, feed_events.c.id > after)
    if services is not None:
        stmt = stmt.where(or_(*(feed_events.c.type.like(f"be.cityblocks.{name}.%") for name in services)))
    stmt = stmt.order_by(feed_events.c.id.desc() if after == 0 else feed_events.c.id).limit(limit)
    async with sessionmaker() as session:
        rows = [as_dict(row) for row in (await session.execute(stmt)).all()]
    if after == 0:
        rows.reverse()
    return rows


async def stream(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant: str,
    *,
    after: int,
    services: frozenset[str] | None,
    disconnected: Any,
    lasting_s: float = STREAM_S,
) -> AsyncIterator[str]:
    """Server-sent events: each new event of the tenant as `event: cityblocks`, heartbeats as comments."""
    last = after
    quiet = 0.0
    ends = asyncio.get_running_loop().time() + lasting_s
    yield "retry: 1000\n\n"
    while not await disconnected() and asyncio.get_running_loop().time() < ends:
        found = await recent(sessionmaker, tenant, after=last, services=services, limit=200)
        if found:
            for item in found:
                yield f"id: {item['id']}\nevent: cityblocks\ndata: {json.dumps(item)}\n\n"
            last = found[-1]["id"]
            quiet = 0.0
        elif quiet >= HEARTBEAT_S:
            yield ": heartbeat\n\n"
            quiet = 0.0
        await asyncio.sleep(POLL_S)
        quiet += POLL_S
