"""Sent outbox rows are kept for a while, then purged; unsent rows never are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import InProcessBus, OutboxRelay, UnitOfWorkFactory
from eventbus.tables import metadata, outbox


def _row(event_id: str, sent_at: datetime | None) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "event_id": event_id,
        "topic": "probe.records",
        "key": "k",
        "type": "be.cityblocks.probe.ProbeRecorded.v1",
        "attributes": {},
        "data": {},
        "created_at": now - timedelta(days=30),
        "sent_at": sent_at,
    }


async def _event_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(outbox.c.event_id).order_by(outbox.c.seq))).scalars())


async def test_rows_sent_longer_ago_than_kept_are_purged_and_unsent_rows_stay(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    rows = [
        _row("old", now - timedelta(days=8)),
        _row("recent", now - timedelta(hours=1)),
        _row("unsent", None),
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(outbox), rows)
    relay = OutboxRelay(async_sessionmaker(engine), InProcessBus())

    assert await relay.purge_sent(timedelta(days=7), chunk=1) == 1

    assert await _event_ids(engine) == ["recent", "unsent"]


async def test_a_running_relay_purges_on_its_own(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(outbox), [_row("old", datetime.now(UTC) - timedelta(days=8))])
    relay = OutboxRelay(async_sessionmaker(engine), InProcessBus(), poll_interval=0.01)

    await relay.start()
    try:
        async with asyncio.timeout(10):
            while await _event_ids(engine):  # noqa: ASYNC110 - polling the database, no event to wait on
                await asyncio.sleep(0.02)
    finally:
        await relay.stop()


async def test_a_relay_stops_even_when_woken_in_the_same_turn(engine: AsyncEngine) -> None:
    # A commit's wake-up and the service's shutdown can land in the same loop turn (Ctrl-C right after a
    # command); the stop must not be swallowed by the wake-up.
    relay = OutboxRelay(async_sessionmaker(engine), InProcessBus(), poll_interval=30)
    await relay.start()
    for _ in range(50):
        await asyncio.sleep(0.01)  # let it reach its wait on an empty outbox

    for _ in range(20):
        relay.notify()
        async with asyncio.timeout(5):
            await relay.stop()
        await relay.start()
        await asyncio.sleep(0.05)
    await relay.stop()


class CountingBus(InProcessBus):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def publish(self, envelopes: Sequence[Envelope], **options: Any) -> None:
        self.batches.append(len(envelopes))
        await super().publish(envelopes, **options)


async def test_commits_in_quick_succession_are_relayed_together(engine: AsyncEngine) -> None:
    bus = CountingBus()
    relay = OutboxRelay(async_sessionmaker(engine), bus, poll_interval=30, linger=0.5)
    async with engine.begin() as connection:  # the pool's connection is made before, not among the commits
        await connection.execute(select(outbox.c.seq).limit(1))
    await relay.start()
    try:
        for _ in range(50):
            await asyncio.sleep(0.01)  # let it reach its wait on an empty outbox
        for n in range(10):
            async with engine.begin() as connection:
                await connection.execute(insert(outbox), [_probe_row(f"e{n}")])
            relay.notify()
        async with asyncio.timeout(10):
            while relay.published < 10:  # noqa: ASYNC110 - polling the relay's count, no event to wait on
                await asyncio.sleep(0.01)
    finally:
        await relay.stop()

    assert bus.batches == [10]
    assert [r.envelope.id for r in bus.records("probe.records")] == [f"e{n}" for n in range(10)]


def _probe_row(event_id: str) -> dict[str, object]:
    envelope = Envelope.wrap(ProbeRecorded(stream="s", seq=0), source="/test", tenant="44021")
    attributes = envelope.attributes()
    attributes["id"] = event_id
    return {
        "event_id": event_id,
        "topic": ProbeRecorded.topic,
        "key": envelope.partitionkey,
        "type": envelope.type,
        "attributes": attributes,
        "data": envelope.data,
        "created_at": datetime.now(UTC),
        "sent_at": None,
    }


def _remembering(
    engine: AsyncEngine, bus: InProcessBus, **options: Any
) -> tuple[OutboxRelay, UnitOfWorkFactory]:
    """A relay told what each commit of the units of work wrote, as a service wires them."""
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    relay = OutboxRelay(sessionmaker, bus, **options)
    return relay, UnitOfWorkFactory(sessionmaker, "/test", on_written=relay.remember)


async def test_the_relay_publishes_the_envelopes_this_process_committed_without_decoding_them(
    engine: AsyncEngine,
) -> None:
    bus = InProcessBus()
    relay, uow_factory = _remembering(engine, bus)
    async with uow_factory() as uow:
        emitted = [uow.emit(ProbeRecorded(stream="s", seq=n), tenant="44021") for n in range(3)]
    # A row another process committed is decoded from its row, in seq order with the others.
    async with engine.begin() as connection:
        await connection.execute(insert(outbox), [_probe_row("elsewhere")])

    assert await relay.drain() == 4

    published = [record.envelope for record in bus.records(ProbeRecorded.topic)]
    assert [e.id for e in published] == [*(e.id for e in emitted), "elsewhere"]
    assert all(sent is made for sent, made in zip(published, emitted, strict=False))
    assert relay._written == {}


async def test_a_rolled_back_unit_of_work_leaves_nothing_to_publish(engine: AsyncEngine) -> None:
    relay, uow_factory = _remembering(engine, InProcessBus())
    try:
        async with uow_factory() as uow:
            uow.emit(ProbeRecorded(stream="s", seq=0), tenant="44021")
            await uow.flush()
            raise RuntimeError("refused")
    except RuntimeError:
        pass

    assert relay._written == {}
    assert await relay.drain() == 0


def test_the_relay_keeps_a_bounded_number_of_envelopes() -> None:
    relay = OutboxRelay(None, InProcessBus(), batch_size=10)  # type: ignore[arg-type]
    envelope = Envelope.wrap(ProbeRecorded(stream="s", seq=0), source="/test", tenant="44021")

    relay.remember([(seq, envelope) for seq in range(25_000)])

    assert len(relay._written) == 10_000
    assert min(relay._written) == 15_000


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_async_engine(postgres_url)
    async with made.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield made
    await made.dispose()


def _published(bus: InProcessBus) -> list[int]:
    return sorted(record.envelope.data["seq"] for record in bus.records(ProbeRecorded.topic))


@pytest.mark.postgres
async def test_a_row_this_process_commits_late_below_what_the_relay_read_is_published(
    pg_engine: AsyncEngine,
) -> None:
    bus = InProcessBus()
    relay, uow_factory = _remembering(pg_engine, bus, full_read_interval=3600)
    async with uow_factory() as early:
        early.emit(ProbeRecorded(stream="s", seq=1), tenant="44021")
        await early.flush()  # takes the lower seq, commits last
        async with uow_factory() as late:
            late.emit(ProbeRecorded(stream="s", seq=2), tenant="44021")
        assert await relay.drain() == 1  # a full read (the first), past the row still uncommitted
        assert await relay.drain() == 0  # a read from the floor
    assert await relay.drain() == 1

    assert _published(bus) == [1, 2]


@pytest.mark.postgres
async def test_a_row_another_process_commits_below_the_floor_is_published_by_the_next_full_read(
    pg_engine: AsyncEngine,
) -> None:
    bus = InProcessBus()
    relay, uow_factory = _remembering(pg_engine, bus, full_read_interval=0.3)
    async with uow_factory() as uow:
        for n in range(3):
            uow.emit(ProbeRecorded(stream="s", seq=n), tenant="44021")
    assert await relay.drain() == 3
    # Another process's transaction that took a seq before these and commits only now.
    row = _probe_row("late") | {"seq": -1}
    row["data"] = {"stream": "s", "seq": 9}
    async with pg_engine.begin() as connection:
        await connection.execute(insert(outbox), [row])

    assert await relay.drain() == 0  # reads from the floor, past it
    await asyncio.sleep(0.35)
    assert await relay.drain() == 1

    assert _published(bus) == [0, 1, 2, 9]
