"""The unit of work on SQLite: outbox rows commit with the business change, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from contracts.probe import ProbeRecorded
from eventbus import UnitOfWorkFactory, tracing
from eventbus.tables import metadata, outbox

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncEngine:
    made = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}")
    async with made.begin() as connection:
        await connection.run_sync(metadata.create_all)
    return made


async def outbox_rows(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as connection:
        return [dict(row) for row in (await connection.execute(select(outbox))).mappings()]


async def test_emitted_events_are_written_to_the_outbox_on_commit_and_wake_the_relay(
    engine: AsyncEngine,
) -> None:
    wakeups: list[str] = []
    factory = UnitOfWorkFactory(
        async_sessionmaker(engine), "/cityblocks/probe", on_commit=lambda: wakeups.append("relay")
    )

    async with factory() as uow:
        envelope = uow.emit(ProbeRecorded(stream="s", seq=1), tenant="44021", subject="probe/s")

    [row] = await outbox_rows(engine)
    assert row["event_id"] == envelope.id
    assert row["topic"] == "probe.records"
    assert row["key"] == "s"
    assert row["sent_at"] is None
    assert row["attributes"]["subject"] == "probe/s"  # type: ignore[index]
    assert row["data"] == {"stream": "s", "seq": 1, "payload": "", "recorded_at": None}
    assert wakeups == ["relay"]


async def test_an_exception_in_the_unit_of_work_writes_no_event(engine: AsyncEngine) -> None:
    wakeups: list[str] = []
    factory = UnitOfWorkFactory(
        async_sessionmaker(engine), "/cityblocks/probe", on_commit=lambda: wakeups.append("relay")
    )

    with pytest.raises(RuntimeError):
        async with factory() as uow:
            uow.emit(ProbeRecorded(stream="s", seq=1), tenant="44021")
            raise RuntimeError("business rule broken")

    assert await outbox_rows(engine) == []
    assert wakeups == []


async def test_an_event_carries_the_current_trace_or_starts_one(engine: AsyncEngine) -> None:
    factory = UnitOfWorkFactory(async_sessionmaker(engine), "/cityblocks/probe")

    async with factory() as uow:
        with tracing.traced(PARENT):
            inside = uow.emit(ProbeRecorded(stream="s", seq=1), tenant="44021")
        outside = uow.emit(ProbeRecorded(stream="s", seq=2), tenant="44021")

    assert inside.traceparent is not None and tracing.trace_id_of(inside.traceparent) == tracing.trace_id_of(
        PARENT
    )
    assert tracing.is_valid(outside.traceparent)
    async with engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(outbox))).scalar_one() == 2


async def test_an_event_without_a_tenant_is_refused(engine: AsyncEngine) -> None:
    factory = UnitOfWorkFactory(async_sessionmaker(engine), "/cityblocks/probe")

    with pytest.raises(ValueError):
        async with factory() as uow:
            uow.emit(ProbeRecorded(stream="s", seq=1), tenant="")

    assert await outbox_rows(engine) == []


async def test_after_commit_callbacks_run_only_when_the_transaction_committed(engine: AsyncEngine) -> None:
    factory = UnitOfWorkFactory(async_sessionmaker(engine), "/cityblocks/probe")
    ran: list[str] = []

    async with factory() as uow:
        uow.after_commit(lambda: ran.append("committed"))
    with pytest.raises(RuntimeError):
        async with factory() as uow:
            uow.after_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("business rule broken")

    assert ran == ["committed"]
