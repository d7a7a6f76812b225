"""The consumer: decodes envelopes, applies each event once through the inbox, retries, then dead-letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache

from pydantic import ValidationError
from sqlalchemy import insert, select

from contracts import registry
from contracts.base import Event
from contracts.envelope import Envelope
from eventbus import tracing
from eventbus.bus import DLQ_ATTEMPTS, DLQ_CONSUMER, DLQ_ERROR, Bus, Undecodable, dlq_topic
from eventbus.inbox import claim
from eventbus.tables import dead_letters
from eventbus.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, Event, Envelope], Awaitable[None]]
Decoded = tuple[Envelope, Event, Handler]


@cache
def _fields(cls: type[Event]) -> frozenset[str]:
    return frozenset(cls.__pydantic_fields__)


def _decode(envelope: Envelope) -> Event:
    """`registry.decode` (a tolerant reader: unknown fields dropped) with each class's field names kept.

    Reading `model_fields` on the class goes through pydantic's deprecation shim, several microseconds per
    field and event; the names of a class never change.
    """
    cls = registry.event_class(envelope.type)
    fields = _fields(cls)
    return cls.model_validate({k: v for k, v in envelope.data.items() if k in fields})


class Consumer:
    """One consumer group per service: subscribes to the topics of its events on the bus when constructed.

    Records fetched together are applied in one transaction; when any of them fails, each is retried on its
    own so that only the failing record is dead-lettered. With `concurrency` above one, the bus delivers that
    many partitions' records at the same time, each in its own transaction.
    """

    def __init__(
        self,
        name: str,
        uow_factory: UnitOfWorkFactory,
        bus: Bus,
        subscriptions: Mapping[type[Event], Handler],
        *,
        max_attempts: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        batch: bool = True,
        concurrency: int = 1,
    ) -> None:
        self.name = name
        self.uow_factory = uow_factory
        self._bus = bus
        self._handlers = {cls.event_type: handler for cls, handler in subscriptions.items()}
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self.topics = sorted({cls.topic for cls in subscriptions})
        if self.topics:
            bus.subscribe(
                name,
                self.topics,
                self.deliver,
                deliver_batch=self.deliver_batch if batch else None,
                reject=self.reject,
                concurrency=concurrency,
            )

    async def deliver(self, envelope: Envelope) -> None:
        decoded = await self._decode(envelope)
        if decoded is not None:
            await self._apply_with_retries(decoded)

    async def deliver_batch(self, envelopes: Sequence[Envelope]) -> None:
        batch: list[Decoded] = []
        seen: set[str] = set()
        for envelope in envelopes:
            decoded = await self._decode(envelope)
            if decoded is not None and envelope.id not in seen:
                seen.add(envelope.id)
                batch.append(decoded)
        if len(batch) > 1:
            try:
                await self._apply_batch(batch)
                return
            except Exception:
                log.warning(
                    "%s: batch of %d failed; applying one by one", self.name, len(batch), exc_info=True
                )
        for decoded in batch:
            await self._apply_with_retries(decoded)

    async def apply_once(self, envelope: Envelope, event: Event) -> bool:
        """Apply one event in its own transaction; False when the inbox says it was applied before."""
        handler = self._handler(envelope)
        async with self.uow_factory() as uow:
            if not await claim(uow.session, self.name, [envelope.id]):
                return False
            with tracing.traced(envelope.traceparent, self._span_name(event)):
                await handler(uow, event, envelope)
        return True

    async def reject(self, record: Undecodable) -> None:
        """Keep a dead-letter row for a record the bus could not read (it already sits on the DLQ topic)."""
        raw = {"headers": dict(record.headers), "value": record.value, "partition": record.partition}
        event_id = record.headers.get("ce_id") or f"{record.topic}/{record.partition}/{record.offset}"
        await self._store_dead_letter(event_id, record.topic, raw, record.error, 1)

    def _span_name(self, event: Event) -> str:
        return f"{self.name} handles {event.__class__.__name__}"

    def _handler(self, envelope: Envelope) -> Handler:
        return self._handlers[envelope.type]

    async def _decode(self, envelope: Envelope) -> Decoded | None:
        """The event and its handler; None when the type is ignored here or the envelope was dead-lettered."""
        try:
            event = _decode(envelope)
        except (registry.UnknownEventType, ValidationError) as exc:
            await self._dead_letter(envelope, f"{type(exc).__name__}: {exc}", 1)
            return None
        handler = self._handlers.get(envelope.type)
        return None if handler is None else (envelope, event, handler)

    async def _apply_batch(self, batch: Sequence[Decoded]) -> None:
        async with self.uow_factory() as uow:
            fresh = await claim(uow.session, self.name, [envelope.id for envelope, _, _ in batch])
            for envelope, event, handler in batch:
                if envelope.id in fresh:
                    with tracing.traced(envelope.traceparent, self._span_name(event)):
                        await handler(uow, event, envelope)

    async def _apply_with_retries(self, decoded: Decoded) -> None:
        envelope, event, _ = decoded
        for attempt in range(1, self._max_attempts + 1):
            try:
                await self.apply_once(envelope, event)
                return
            except Exception as exc:
                if attempt == self._max_attempts:
                    await self._dead_letter(envelope, f"{type(exc).__name__}: {exc}", attempt)
                    return
                log.warning("%s: %s failed (attempt %d)", self.name, envelope.id, attempt, exc_info=True)
                await asyncio.sleep(min(self._backoff * 2 ** (attempt - 1), self._max_backoff))

    async def _dead_letter(self, envelope: Envelope, error: str, attempts: int) -> None:
        log.error(
            "%s: dead-lettering %s (%s) after %d attempts: %s",
            self.name,
            envelope.id,
            envelope.type,
            attempts,
            error,
        )
        await self._store_dead_letter(
            envelope.id, envelope.topic, envelope.model_dump(mode="json"), error, attempts
        )
        headers = {DLQ_ERROR: error[:4000], DLQ_CONSUMER: self.name, DLQ_ATTEMPTS: str(attempts)}
        await self._bus.publish([envelope], topic=dlq_topic(envelope.topic), headers=headers)

    async def _store_dead_letter(
        self, event_id: str, topic: str, envelope: Mapping[str, object], error: str, attempts: int
    ) -> None:
        row = {
            "consumer": self.name,
            "event_id": event_id,
            "topic": topic,
            "envelope": dict(envelope),
            "error": error,
            "attempts": attempts,
            "created_at": datetime.now(UTC),
        }
        # When the DLQ publish after this fails, the record is delivered again and fails again: keep one row.
        pending = select(dead_letters.c.id).where(
            dead_letters.c.consumer == self.name,
            dead_letters.c.event_id == event_id,
            dead_letters.c.replayed_at.is_(None),
        )
        async with self.uow_factory.sessionmaker() as session, session.begin():
            if (await session.execute(pending.limit(1))).first() is None:
                await session.execute(insert(dead_letters).values(row))
