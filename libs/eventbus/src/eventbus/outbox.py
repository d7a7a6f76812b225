"""The outbox relay: publishes committed outbox rows in batches, oldest first, then marks them sent."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Row, Text, all_, any_, bindparam, cast, delete, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import ColumnElement

from contracts.envelope import Envelope
from eventbus.bus import Bus
from eventbus.codec import from_json
from eventbus.tables import outbox

log = logging.getLogger(__name__)


_SEQS = ARRAY(BigInteger)


class OutboxRelay:
    """Selects unsent rows rather than keeping a high-water mark, so a row that commits late is never skipped.

    On PostgreSQL one relay keeps up to `pipeline` batches in flight: it selects and enqueues the next batch
    while the broker acknowledges the previous ones (batches are enqueued in seq order, so the order per key
    holds). Rows stay locked until they are acknowledged and marked sent, and a relay waits for rows another
    relay has locked instead of skipping them: so several relays (one per replica) may share one outbox and
    still publish every key in seq order, one after the other rather than side by side.
    A crash between publishing and marking sent republishes the batch; the consumers' inboxes absorb it.

    Rows marked sent leave dead index entries behind until vacuum, and under load there are tens of thousands
    of them in front of the few unsent rows. On PostgreSQL a relay told what its own commits wrote
    (`remember`) therefore reads from a floor: the lowest seq its process committed since the last read, or
    past the highest seq it has read. A row another process commits late below that floor is found by a full
    read, at least once every `full_read_interval` seconds.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retry_delay: float = 1.0,
        pipeline: int = 4,
        keep_sent: timedelta | None = timedelta(days=7),
        purge_interval: float = 3600.0,
        linger: float = 0.01,
        full_read_interval: float = 1.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retry_delay = retry_delay
        self._pipeline = asyncio.Semaphore(pipeline)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._in_flight_seqs: set[int] = set()
        self._failed: BaseException | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._keep_sent = keep_sent
        self._purge_interval = purge_interval
        self._next_purge = 0.0
        self._linger = linger
        # Envelopes this process committed, by outbox seq, not yet read back: published as they are rather
        # than decoded again from their rows. Bounded: rows another relay publishes are never read back here.
        self._written: dict[int, Envelope] = {}
        self._written_limit = max(20 * batch_size, 10_000)
        # The floor of the next read (see the class's doc): set once `remember` is called.
        self._remembering = False
        self._committed_low: int | None = None
        self._read_high = 0
        self._full_read_interval = full_read_interval
        self._next_full_read = 0.0
        self.published = 0

    def notify(self) -> None:
        """Wake the relay (called after a commit that wrote outbox rows)."""
        self._wakeup.set()

    def remember(self, written: list[tuple[int, Envelope]]) -> None:
        """Keep the envelopes a commit wrote, by seq, for publishing them without decoding their rows."""
        self._written.update(written)
        self._remembering = True
        low = min(seq for seq, _ in written)
        self._committed_low = low if self._committed_low is None else min(self._committed_low, low)
        excess = len(self._written) - self._written_limit
        if excess > 0:
            for seq in list(itertools.islice(self._written, excess)):
                del self._written[seq]

    def _envelope(self, row: Row[Any, Any, Any, Any]) -> Envelope:
        envelope = self._written.pop(row[0], None)
        return envelope if envelope is not None else _envelope(row)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were published."""
        async with self._sessionmaker() as session, session.begin():
            rows = await self._unsent(session)
            if not rows:
                return 0
            await self._bus.publish([self._envelope(row) for row in rows])
            await self._mark_sent(session, [row.seq for row in rows])
        self.published += len(rows)
        return len(rows)

    async def drain(self) -> int:
        """Publish until no unsent row is left."""
        total = 0
        while count := await self.relay_once():
            total += count
        return total

    async def _unsent(self, session: AsyncSession) -> Sequence[Row[Any, Any, Any, Any]]:
        # The JSON columns are read as text and parsed with orjson, several times faster than the driver.
        stmt = (
            select(outbox.c.seq, outbox.c.topic, cast(outbox.c.attributes, Text), cast(outbox.c.data, Text))
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.seq)
            .limit(self._batch_size)
        )
        if not _is_postgresql(session):
            return (await session.execute(stmt)).all()
        # Not SKIP LOCKED: skipping rows another relay has in flight would publish later rows of their keys
        # first. Waiting for them (they are re-checked once that relay commits) keeps the order per key. Our
        # own batches in flight are excluded by seq instead.
        stmt = stmt.where(outbox.c.seq != all_(bindparam("in_flight", type_=_SEQS))).with_for_update()
        params: dict[str, Any] = {"in_flight": sorted(self._in_flight_seqs)}
        floor = self._floor()
        if floor is not None:
            stmt = stmt.where(outbox.c.seq >= bindparam("floor"))
            params["floor"] = floor
        rows = (await session.execute(stmt, params)).all()
        if rows:
            self._read_high = max(self._read_high, rows[-1][0])
        return rows

    def _floor(self) -> int | None:
        """The seq the next read starts from, or None for a full read; taken before the read begins.

        Rows this process commits after this moment set the floor of the read after this one.
        """
        low, self._committed_low = self._committed_low, None
        now = asyncio.get_running_loop().time()
        if not self._remembering or now >= self._next_full_read:
            self._next_full_read = now + self._full_read_interval
            return None
        past_read = self._read_high + 1
        return past_read if low is None else min(low, past_read)

    async def purge_sent(self, older_than: timedelta, chunk: int = 10_000) -> int:
        """Delete rows sent more than `older_than` ago, a chunk per transaction; returns how many."""
        cutoff = datetime.now(UTC) - older_than
        old = select(outbox.c.seq).where(outbox.c.sent_at < cutoff).limit(chunk).scalar_subquery()
        total = 0
        while True:
            async with self._sessionmaker() as session, session.begin():
                result = await session.execute(delete(outbox).where(outbox.c.seq.in_(old)))
            deleted = int(getattr(result, "rowcount", 0) or 0)
            total += deleted
            if deleted < chunk:
                return total

    async def _purge_when_due(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._keep_sent is None or now < self._next_purge:
            return
        self._next_purge = now + self._purge_interval
        try:
            await self.purge_sent(self._keep_sent)
        except Exception:
            log.exception("purging sent outbox rows failed; trying again later")

    async def _mark_sent(self, session: AsyncSession, seqs: list[int]) -> None:
        stmt = update(outbox).where(_seq_in(session, seqs)).values(sent_at=datetime.now(UTC))
        await session.execute(stmt)

    async def _run(self) -> None:
        async with self._sessionmaker() as session:
            pipelined = _is_postgresql(session)
        relay = self._relay_pipelined if pipelined else self.relay_once
        while True:
            self._wakeup.clear()
            try:
                count = await relay()
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(self._retry_delay)
                continue
            if count < self._batch_size:
                await self._purge_when_due()
                if await self._wait() and self._linger > 0:
                    # As a producer's linger: the commits of the next moments go out in the same batch,
                    # one select and one update for many commits rather than one each.
                    await asyncio.sleep(self._linger)

    async def _relay_pipelined(self) -> int:
        """Select and enqueue one batch; its rows stay locked until they are acknowledged and marked sent."""
        await self._pipeline.acquire()
        if self._failed is not None:
            # An earlier batch failed: let every batch in flight settle first, so it is retried in seq order.
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            failed, self._failed = self._failed, None
            self._pipeline.release()
            raise failed
        session = self._sessionmaker()
        try:
            await session.begin()
            rows = await self._unsent(session)
            durable = await self._bus.enqueue([self._envelope(row) for row in rows]) if rows else None
        except BaseException:
            await session.close()
            self._pipeline.release()
            raise
        if durable is None:
            await session.close()
            self._pipeline.release()
            return 0
        seqs = [row.seq for row in rows]
        self._in_flight_seqs.update(seqs)
        task = asyncio.create_task(self._settle(session, seqs, durable))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return len(rows)

    async def _settle(self, session: AsyncSession, seqs: list[int], durable: Awaitable[None]) -> None:
        try:
            await durable
            await self._mark_sent(session, seqs)
            await session.commit()
            self.published += len(seqs)
        except Exception as exc:
            self._failed = exc
        finally:
            await session.close()
            self._in_flight_seqs.difference_update(seqs)
            self._pipeline.release()

    async def _wait(self) -> bool:
        """Until a commit wakes the relay (True) or the poll interval is over (False)."""
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives in the same turn as the
        # wake-up, and stop() would then wait forever for a relay that goes on looping.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._poll_interval):
                await self._wakeup.wait()
                return True
        return False


def _envelope(row: Row[Any, Any, Any, Any]) -> Envelope:
    _, topic, attributes, data = row
    return Envelope.from_attributes(from_json(attributes), topic=topic, data=from_json(data))


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _seq_in(session: AsyncSession, seqs: list[int]) -> ColumnElement[bool]:
    # One array parameter on PostgreSQL: a single prepared statement, whatever the batch size.
    if _is_postgresql(session):
        return outbox.c.seq == any_(bindparam("seqs", seqs, type_=_SEQS))
    return outbox.c.seq.in_(seqs)
