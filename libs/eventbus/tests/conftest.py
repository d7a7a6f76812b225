"""Fixtures of the eventbus conformance suite: every bus on every database, with a probe consumer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from contracts.base import Event
from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import Consumer, InProcessBus, KafkaBus, OutboxRelay, UnitOfWork, UnitOfWorkFactory
from eventbus.bus import Bus
from eventbus.tables import metadata

probe_metadata = MetaData()
probe_applied = Table(
    "probe_applied",
    probe_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("event_id", String(255), nullable=False),
)

POISON = "poison"


def sqlite_engine(path: Path) -> AsyncEngine:
    """SQLite with WAL and BEGIN IMMEDIATE, so concurrent writers wait for each other instead of failing."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    del _connect, _begin
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        made = sqlite_engine(tmp_path / "bus.db")
    else:
        made = create_async_engine(request.getfixturevalue("postgres_url"))
    async with made.begin() as connection:
        await connection.run_sync(metadata.create_all)
        await connection.run_sync(probe_metadata.create_all)
    yield made
    await made.dispose()


BusMaker = Callable[[], Bus]


@pytest.fixture(params=["inprocess", pytest.param("kafka", marks=pytest.mark.kafka)])
def make_bus(request: pytest.FixtureRequest) -> BusMaker:
    """Makes the bus of this test; on Kafka every test gets its own topics through a unique prefix."""
    if request.param == "inprocess":
        bus = InProcessBus()
        return lambda: bus
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    return lambda: KafkaBus(bootstrap, "eventbus-tests", topic_prefix=prefix, poll_timeout_ms=50, linger_ms=1)


class RecordingConsumer(Consumer):
    """A consumer that remembers every envelope the bus handed it, duplicates included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.seen: list[str] = []
        super().__init__(*args, **kwargs)

    async def deliver(self, envelope: Envelope) -> None:
        self.seen.append(envelope.id)
        await super().deliver(envelope)

    async def deliver_batch(self, envelopes: Sequence[Envelope]) -> None:
        self.seen.extend(e.id for e in envelopes)
        await super().deliver_batch(envelopes)


@dataclass
class Harness:
    engine: AsyncEngine
    bus: Bus
    make_bus: BusMaker
    sessionmaker: async_sessionmaker[AsyncSession]
    uow_factory: UnitOfWorkFactory
    relay: OutboxRelay
    group: str
    failing: set[int] = field(default_factory=set)
    gate: asyncio.Event | None = None
    consumer: RecordingConsumer | None = None
    waiting: int = 0  # handlers waiting at the gate now
    most_waiting: int = 0

    @property
    def kafka(self) -> bool:
        return isinstance(self.bus, KafkaBus)

    async def apply_probe(self, uow: UnitOfWork, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, ProbeRecorded)
        if self.gate is not None:
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
            try:
                await self.gate.wait()
            finally:
                self.waiting -= 1
        if event.payload == POISON or event.seq in self.failing:
            raise RuntimeError(f"cannot apply {event.stream}/{event.seq}")
        row = {"stream": event.stream, "seq": event.seq, "event_id": envelope.id}
        await uow.session.execute(insert(probe_applied).values(row))

    def new_consumer(self, **options: Any) -> RecordingConsumer:
        options = {"max_attempts": 3, "backoff": 0.01, **options}
        subscriptions = {ProbeRecorded: self.apply_probe}
        self.consumer = RecordingConsumer(self.group, self.uow_factory, self.bus, subscriptions, **options)
        return self.consumer

    async def start(self, **options: Any) -> RecordingConsumer:
        consumer = self.new_consumer(**options)
        await self.bus.start()
        return consumer

    async def emit(self, stream: str, *seqs: int, payload: str = "") -> list[Envelope]:
        async with self.uow_factory() as uow:
            for seq in seqs:
                uow.emit(ProbeRecorded(stream=stream, seq=seq, payload=payload), tenant="44021")
        return list(uow.emitted)

    async def applied(self, stream: str) -> list[int]:
        stmt = select(probe_applied.c.seq).where(probe_applied.c.stream == stream)
        stmt = stmt.order_by(probe_applied.c.id)
        async with self.sessionmaker() as session:
            return list((await session.execute(stmt)).scalars())

    async def count(self, table: Table) -> int:
        async with self.sessionmaker() as session:
            return int((await session.execute(select(func.count()).select_from(table))).scalar_one())

    async def eventually(self, check: Callable[[], Awaitable[bool]], within: float | None = None) -> None:
        deadline = asyncio.get_running_loop().time() + (within or (30.0 if self.kafka else 10.0))
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.02)

    async def until_applied(self, stream: str, count: int) -> list[int]:
        async def enough() -> bool:
            return len(await self.applied(stream)) >= count

        await self.eventually(enough)
        return await self.applied(stream)


async def _harness(engine: AsyncEngine, make_bus: BusMaker) -> AsyncIterator[Harness]:
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    bus = make_bus()
    relay = OutboxRelay(sessionmaker, bus, batch_size=100, poll_interval=0.05)
    uow_factory = UnitOfWorkFactory(
        sessionmaker, "/cityblocks/probe", on_commit=relay.notify, on_written=relay.remember
    )
    made = Harness(engine, bus, make_bus, sessionmaker, uow_factory, relay, f"probe-{uuid.uuid4().hex[:8]}")
    yield made
    await relay.stop()
    await made.bus.stop()


@pytest.fixture
async def harness(engine: AsyncEngine, make_bus: BusMaker) -> AsyncIterator[Harness]:
    """The probe pipeline on every bus and every database."""
    async for made in _harness(engine, make_bus):
        yield made


@pytest.fixture
async def kafka_harness(engine: AsyncEngine, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    """The probe pipeline on Kafka (tests using it carry the kafka mark)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    bus = KafkaBus(kafka_bootstrap, "eventbus-tests", topic_prefix=prefix, poll_timeout_ms=50, linger_ms=1)
    async for made in _harness(engine, lambda: bus):
        yield made


@pytest.fixture
async def postgres_harness(postgres_url: str) -> AsyncIterator[Harness]:
    """The probe pipeline on PostgreSQL and the in-process bus (tests using it carry the postgres mark)."""
    made_engine = create_async_engine(postgres_url)
    async with made_engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        await connection.run_sync(probe_metadata.create_all)
    bus = InProcessBus()
    async for made in _harness(made_engine, lambda: bus):
        yield made
    await made_engine.dispose()
