"""PostgreSQL-only behaviour of the outbox: truly concurrent transactions and several relays on one outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import InProcessBus, OutboxRelay
from eventbus.tables import outbox

pytestmark = pytest.mark.postgres


async def test_a_transaction_that_commits_after_a_later_one_was_relayed_is_still_published(
    postgres_harness: Any,
) -> None:
    harness = postgres_harness
    await harness.start()
    async with harness.uow_factory() as slow:
        slow.emit(ProbeRecorded(stream="late", seq=1), tenant="44021")
        await slow.flush()
        await harness.emit("late", 2)
        assert await harness.relay.drain() == 1
        assert await harness.until_applied("late", 1) == [2]

    assert await harness.relay.drain() == 1
    assert sorted(await harness.until_applied("late", 2)) == [1, 2]


async def test_two_relays_share_one_outbox_without_publishing_a_row_twice(postgres_harness: Any) -> None:
    harness = postgres_harness
    consumer = await harness.start()
    for seq in range(0, 200, 10):
        await harness.emit("shared", *range(seq, seq + 10))
    relays = [OutboxRelay(harness.sessionmaker, harness.bus, batch_size=7) for _ in range(2)]

    published = await asyncio.gather(*(relay.drain() for relay in relays))

    assert sum(published) == 200
    assert sorted(await harness.until_applied("shared", 200)) == list(range(200))
    assert len(consumer.seen) == len(set(consumer.seen)) == 200
    async with harness.sessionmaker() as session:
        unsent = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        assert (await session.execute(unsent)).scalar_one() == 0


async def test_a_relay_with_batches_in_flight_keeps_the_order_per_key(postgres_harness: Any) -> None:
    harness = postgres_harness
    consumer = await harness.start()
    for seq in range(0, 300, 30):
        async with harness.uow_factory() as uow:
            for n in range(seq, seq + 30):
                uow.emit(ProbeRecorded(stream=f"k{n % 3}", seq=n), tenant="44021")
    relay = OutboxRelay(harness.sessionmaker, harness.bus, batch_size=7, pipeline=4)

    await relay.start()

    for stream in range(3):
        applied = await harness.until_applied(f"k{stream}", 100)
        assert applied == list(range(stream, 300, 3))
    await relay.stop()
    assert len(consumer.seen) == 300


class HeldBus:
    """Publishes to `inner` only once `release` is set: a relay whose broker is slow to acknowledge."""

    def __init__(self, inner: InProcessBus, release: asyncio.Event) -> None:
        self._inner = inner
        self._release = release
        self.holding = asyncio.Event()

    async def publish(self, envelopes: Sequence[Envelope], **options: Any) -> None:
        self.holding.set()
        await self._release.wait()
        await self._inner.publish(envelopes, **options)


async def test_a_second_relay_waits_for_the_rows_a_first_relay_has_in_flight(postgres_harness: Any) -> None:
    harness = postgres_harness
    consumer = await harness.start()
    async with harness.uow_factory() as uow:
        for seq in range(20):
            uow.emit(ProbeRecorded(stream="two", seq=seq), tenant="44021")
    release = asyncio.Event()
    slow = HeldBus(harness.bus, release)
    slow_relay = OutboxRelay(harness.sessionmaker, slow, batch_size=10)  # type: ignore[arg-type]
    first = asyncio.create_task(slow_relay.relay_once())
    await slow.holding.wait()
    second = asyncio.create_task(OutboxRelay(harness.sessionmaker, harness.bus, batch_size=10).relay_once())

    await asyncio.sleep(0.3)
    assert not second.done()
    release.set()

    assert [await first, await second] == [10, 10]
    assert await harness.until_applied("two", 20) == list(range(20))
    assert len(consumer.seen) == 20
