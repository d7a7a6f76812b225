"""The unit of work: one transaction in which business rows and the outbox rows of emitted events commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from types import TracebackType
from typing import Any

from sqlalchemy import JSON, Text, bindparam, cast, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert

from contracts.base import Event
from contracts.envelope import Envelope
from eventbus import tracing
from eventbus.codec import to_json
from eventbus.tables import outbox

CommitHook = Callable[[], None]
# Called after a commit with the outbox rows it wrote, as (seq, envelope): the relay then publishes these
# envelopes as they are, instead of decoding the rows it reads back.
WrittenHook = Callable[[list[tuple[int, Envelope]]], None]


def checked(event: Event) -> tuple[Event, dict[str, Any]]:
    """The event re-validated through its JSON form (nothing invalid reaches the outbox), and that form."""
    if not isinstance(event, Event) or "event_type" not in type(event).__dict__:
        raise TypeError(f"{event!r} is not a concrete contract event")
    data = event.model_dump(mode="json")
    return type(event).model_validate(data), data


class UnitOfWork:
    """Use as `async with factory() as uow:`; commits on a clean exit, rolls back on an exception."""

    def __init__(
        self,
        session: AsyncSession,
        source: str,
        hooks: list[CommitHook],
        on_written: WrittenHook | None = None,
    ) -> None:
        self.session = session
        self._source = source
        self._hooks = hooks
        self._on_written = on_written
        self._written: list[tuple[int, Envelope]] = []
        self._pending: list[Envelope] = []
        self._after_commit: list[CommitHook] = []
        self.emitted: list[Envelope] = []

    def emit(
        self,
        event: Event,
        *,
        tenant: str,
        subject: str | None = None,
        event_id: str | None = None,
        traceparent: str | None = None,
    ) -> Envelope:
        """Queue an event for this transaction's outbox; raises before anything is written when invalid.

        The event continues `traceparent` when given (work deferred past the span that caused it), else the
        current trace, else it starts one.
        """
        valid, data = checked(event)
        envelope = Envelope.wrap(
            valid,
            data=data,
            source=self._source,
            tenant=tenant,
            subject=subject,
            traceparent=traceparent or tracing.current_traceparent() or tracing.new_traceparent(),
            event_id=event_id,
        )
        self._pending.append(envelope)
        self.emitted.append(envelope)
        return envelope

    def after_commit(self, callback: CommitHook) -> None:
        """Run `callback` once this transaction has committed (never when it rolls back)."""
        self._after_commit.append(callback)

    async def flush(self) -> None:
        """Write queued outbox rows now (still inside the transaction)."""
        if not self._pending:
            return
        now = datetime.now(UTC)
        if self.session.get_bind().dialect.name == "postgresql":
            rows = await self.session.execute(_unnest_insert(), _outbox_columns(self._pending, now))
        else:
            rows = await self.session.execute(_INSERT_RETURNING, [_outbox_row(e, now) for e in self._pending])
        by_id = {envelope.id: envelope for envelope in self._pending}
        self._written.extend((seq, by_id[event_id]) for seq, event_id in rows)
        self._pending.clear()

    async def commit(self) -> None:
        await self.flush()
        await self.session.commit()
        callbacks = [*self._after_commit, *(self._hooks if self.emitted else [])]
        self._after_commit.clear()
        written, self._written = self._written, []
        if written and self._on_written is not None:
            self._on_written(written)
        for callback in callbacks:
            callback()

    async def rollback(self) -> None:
        self._pending.clear()
        self._written.clear()
        self._after_commit.clear()
        self.emitted.clear()
        await self.session.rollback()

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                await self.commit()
            else:
                await self.rollback()
        finally:
            await self.session.close()


class UnitOfWorkFactory:
    """Makes units of work on one database; `source` is the CloudEvents source, e.g. `/cityblocks/market`."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        source: str,
        *,
        on_commit: CommitHook | None = None,
        on_written: WrittenHook | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.source = source
        self._hooks: list[CommitHook] = [on_commit] if on_commit else []
        self._on_written = on_written

    def add_commit_hook(self, hook: CommitHook) -> None:
        """Call `hook` after each commit that wrote outbox rows (the relay's `notify`)."""
        self._hooks.append(hook)

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessionmaker(), self.source, self._hooks, self._on_written)


def _outbox_row(envelope: Envelope, now: datetime) -> dict[str, Any]:
    return {
        "event_id": envelope.id,
        "topic": envelope.topic,
        "key": envelope.partitionkey,
        "type": envelope.type,
        "attributes": envelope.attributes(),
        "data": envelope.data,
        "created_at": now,
        "sent_at": None,
    }


_COLUMNS = ("event_id", "topic", "key", "type", "attributes", "data")


@cache
def _unnest_insert() -> Insert:
    """One INSERT of every row from arrays (PostgreSQL): one statement instead of one execution per row.

    The rows come out of unnest in array order, so their seqs keep the order of emission.
    """
    arrays: dict[str, ColumnElement[Any]] = {
        name: func.unnest(bindparam(name, type_=ARRAY(Text))) for name in _COLUMNS
    }
    arrays["attributes"] = cast(arrays["attributes"], JSON)
    arrays["data"] = cast(arrays["data"], JSON)
    rows = select(*arrays.values(), bindparam("created_at", type_=outbox.c.created_at.type))
    return (
        insert(outbox).from_select([*_COLUMNS, "created_at"], rows).returning(outbox.c.seq, outbox.c.event_id)
    )


_INSERT_RETURNING = insert(outbox).returning(outbox.c.seq, outbox.c.event_id)


def _outbox_columns(envelopes: list[Envelope], now: datetime) -> dict[str, Any]:
    return {
        "event_id": [e.id for e in envelopes],
        "topic": [e.topic for e in envelopes],
        "key": [e.partitionkey for e in envelopes],
        "type": [e.type for e in envelopes],
        "attributes": [to_json(e.attributes()).decode() for e in envelopes],
        "data": [to_json(e.data).decode() for e in envelopes],
        "created_at": now,
    }
