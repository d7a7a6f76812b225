"""The bus conformance suite: the same behaviour on the in-process bus and Kafka, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import insert, select

from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import InProcessBus, KafkaBus, OutboxRelay, list_dead_letters, replay
from eventbus.bus import dlq_topic, lag_gauge
from eventbus.tables import dead_letters, inbox, outbox


def probe_envelope(stream: str, seq: int, **overrides: Any) -> Envelope:
    event = ProbeRecorded(stream=stream, seq=seq)
    return Envelope.wrap(event, source="/cityblocks/probe", tenant="44021").model_copy(
        update={"data": {**event.model_dump(mode="json"), **overrides}}
    )


async def dlq_headers(harness: Any, topic: str, count: int) -> list[dict[str, str]]:
    """Headers of the first `count` records on a DLQ topic."""
    if isinstance(harness.bus, InProcessBus):
        return [{"ce_id": r.envelope.id, **r.headers} for r in harness.bus.records(topic)]
    from aiokafka import AIOKafkaConsumer

    bus: KafkaBus = harness.bus
    consumer = AIOKafkaConsumer(
        bus.physical(topic), bootstrap_servers=bus.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[dict[str, str]] = []
    try:
        async with asyncio.timeout(20):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found += [{k: v.decode() for k, v in r.headers} for r in records]
    finally:
        await consumer.stop()
    return found


async def test_published_events_are_consumed_once_each(harness: Any) -> None:
    await harness.start()
    await harness.relay.start()
    await harness.emit("s1", 1, 2, 3)
    await harness.emit("s1", 4)

    assert sorted(await harness.until_applied("s1", 4)) == [1, 2, 3, 4]
    await harness.eventually(lambda: _lag_is_zero(harness))


async def _lag_is_zero(harness: Any) -> bool:
    return all(value == 0 for value in (await harness.bus.lag()).values())


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_events_of_one_key_are_applied_in_order(harness: Any, concurrency: int) -> None:
    await harness.start(concurrency=concurrency)
    await harness.relay.start()
    for seq in range(30):
        await harness.emit("a", seq)
        await harness.emit("b", seq)
        await harness.emit("c", seq)

    for stream in ("a", "b", "c"):
        assert await harness.until_applied(stream, 30) == list(range(30))


async def test_with_concurrency_partitions_are_applied_at_the_same_time(harness: Any) -> None:
    harness.gate = asyncio.Event()  # each delivery's first handler waits here until the gate opens
    await harness.start(concurrency=3)
    streams = [f"k{i}" for i in range(12)]  # keys on each of the three partitions
    await harness.bus.publish([probe_envelope(stream, seq) for stream in streams for seq in (1, 2)])
    # SQLite takes one writer at a time: the other deliveries wait for its lock, not at the gate.
    expected = 1 if harness.engine.dialect.name == "sqlite" else 3

    async def all_waiting() -> bool:
        return bool(harness.waiting == expected)

    await harness.eventually(all_waiting)
    await asyncio.sleep(0.2)
    assert harness.waiting == expected
    harness.gate.set()
    for stream in streams:
        assert await harness.until_applied(stream, 2) == [1, 2]
    assert harness.most_waiting == expected


async def test_a_redelivered_event_changes_nothing(harness: Any) -> None:
    consumer = await harness.start()
    envelope = probe_envelope("r", 1)
    await harness.bus.publish([envelope])
    await harness.bus.publish([envelope])
    await harness.bus.publish([probe_envelope("r", 2)])

    assert await harness.until_applied("r", 2) == [1, 2]
    await harness.eventually(lambda: _seen(consumer, 3))
    assert consumer.seen.count(envelope.id) == 2
    assert await harness.applied("r") == [1, 2]
    assert await harness.count(inbox) == 2


async def _seen(consumer: Any, count: int) -> bool:
    return len(consumer.seen) >= count


async def test_a_poison_message_is_dead_lettered_and_the_consumer_goes_on(harness: Any) -> None:
    await harness.start()
    await harness.relay.start()
    await harness.emit("p", 1)
    poison = (await harness.emit("p", 2, payload="poison"))[0]
    await harness.emit("p", 3)

    assert await harness.until_applied("p", 2) == [1, 3]
    letters = await list_dead_letters(harness.sessionmaker, consumer=harness.group)
    assert [(d.event_id, d.attempts) for d in letters] == [(poison.id, 3)]
    assert "cannot apply p/2" in letters[0].error
    [headers] = await dlq_headers(harness, dlq_topic("probe.records"), 1)
    assert headers["ce_id"] == poison.id
    assert headers["ce_dlqconsumer"] == harness.group
    assert headers["ce_dlqattempts"] == "3"
    assert "cannot apply p/2" in headers["ce_dlqerror"]


async def test_a_dead_letter_is_written_once_when_its_dlq_publish_fails_and_is_retried(harness: Any) -> None:
    await harness.start()
    publish = harness.bus.publish
    refused: list[str] = []

    async def dlq_refused_once(envelopes: Any, *, topic: str | None = None, **options: Any) -> None:
        if topic == dlq_topic("probe.records") and not refused:
            refused.append(topic)
            raise RuntimeError("the broker is away")
        await publish(envelopes, topic=topic, **options)

    harness.bus.publish = dlq_refused_once
    await harness.relay.start()
    poison = (await harness.emit("o", 1, payload="poison"))[0]
    await harness.emit("o", 2)

    assert await harness.until_applied("o", 1) == [2]
    assert refused
    letters = await list_dead_letters(harness.sessionmaker, consumer=harness.group)
    assert [d.event_id for d in letters] == [poison.id]
    headers = await dlq_headers(harness, dlq_topic("probe.records"), 1)
    assert [h["ce_id"] for h in headers] == [poison.id]


async def test_a_dead_letter_can_be_replayed_once_the_cause_is_fixed(harness: Any) -> None:
    harness.failing.add(2)
    consumer = await harness.start()
    await harness.relay.start()
    await harness.emit("d", 1, 2, 3)
    await harness.until_applied("d", 2)
    await harness.eventually(lambda: _has_dead_letters(harness, 1))
    [letter] = await list_dead_letters(harness.sessionmaker, consumer=harness.group)

    harness.failing.clear()
    assert await replay(consumer, letter.id) is True

    assert sorted(await harness.applied("d")) == [1, 2, 3]
    assert await list_dead_letters(harness.sessionmaker, consumer=harness.group) == []
    assert await replay(consumer, letter.id) is False
    assert sorted(await harness.applied("d")) == [1, 2, 3]


async def _has_dead_letters(harness: Any, count: int) -> bool:
    return bool(await harness.count(dead_letters) >= count)


async def test_a_restarted_consumer_resumes_from_its_committed_offset(harness: Any) -> None:
    first = await harness.start()
    await harness.emit("x", 1, 2, 3)
    await harness.relay.drain()
    await harness.until_applied("x", 3)
    await harness.bus.stop()

    await harness.bus.start()
    await harness.emit("x", 4, 5)
    await harness.relay.drain()
    await harness.bus.stop()
    second = harness.new_consumer()
    await harness.bus.start()

    assert await harness.until_applied("x", 5) == [1, 2, 3, 4, 5]
    assert len(first.seen) == 3
    assert len(second.seen) == 2


class CrashingRelay(OutboxRelay):
    """A relay that dies after publishing, before it could mark the rows sent."""

    async def _mark_sent(self, session: Any, seqs: list[int]) -> None:
        raise ConnectionAbortedError("relay crashed")


async def test_a_relay_crash_between_publish_and_mark_sent_is_absorbed_by_the_inbox(harness: Any) -> None:
    consumer = await harness.start()
    emitted = await harness.emit("c", 1, 2)
    with pytest.raises(ConnectionAbortedError):
        await CrashingRelay(harness.sessionmaker, harness.bus).relay_once()

    assert await harness.relay.drain() == 2
    await harness.eventually(lambda: _seen(consumer, 4))

    assert sorted(consumer.seen) == sorted(e.id for e in emitted * 2)
    assert await harness.until_applied("c", 2) == [1, 2]
    await asyncio.sleep(0.2)
    assert await harness.applied("c") == [1, 2]


async def test_an_event_that_fails_its_schema_raises_before_anything_is_written(harness: Any) -> None:
    invalid = ProbeRecorded.model_construct(stream="", seq=-1, payload="", recorded_at=None)

    with pytest.raises(ValidationError):
        async with harness.uow_factory() as uow:
            uow.emit(ProbeRecorded(stream="ok", seq=1), tenant="44021")
            await uow.session.execute(insert(inbox).values(consumer="x", event_id="y", processed_at=_now()))
            uow.emit(invalid, tenant="44021")

    assert await harness.count(outbox) == 0
    assert await harness.count(inbox) == 0
    with pytest.raises(ValidationError):
        ProbeRecorded(stream="s", seq=-1)


def _now() -> datetime:
    return datetime.now(UTC)


async def test_a_consumed_event_that_fails_its_schema_is_dead_lettered_and_the_consumer_goes_on(
    harness: Any,
) -> None:
    await harness.start()
    invalid = probe_envelope("v", 1).model_copy(update={"data": {"stream": "v", "seq": -5}})
    unknown = probe_envelope("v", 2).model_copy(update={"type": "be.cityblocks.probe.Nonesuch.v1"})
    await harness.bus.publish([invalid, unknown, probe_envelope("v", 3)])

    assert await harness.until_applied("v", 1) == [3]
    await harness.eventually(lambda: _has_dead_letters(harness, 2))
    letters = {d.event_id: d for d in await list_dead_letters(harness.sessionmaker)}
    assert "ValidationError" in letters[invalid.id].error
    assert "greater than or equal to 0" in letters[invalid.id].error
    assert "UnknownEventType" in letters[unknown.id].error


async def test_an_outbox_row_that_commits_late_is_not_skipped(harness: Any) -> None:
    await harness.start()
    await harness.relay.start()
    await harness.emit("late", 2)
    await harness.until_applied("late", 1)
    [sent_seq] = await _outbox_seqs(harness)

    late = probe_envelope("late", 1)
    row = {
        "seq": sent_seq - 1 if sent_seq > 1 else 0,
        "event_id": late.id,
        "topic": late.topic,
        "key": late.partitionkey,
        "type": late.type,
        "attributes": late.attributes(),
        "data": late.data,
        "created_at": _now(),
    }
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(insert(outbox).values(row))
    harness.relay.notify()

    assert sorted(await harness.until_applied("late", 2)) == [1, 2]


async def _outbox_seqs(harness: Any) -> list[int]:
    async with harness.sessionmaker() as session:
        return list((await session.execute(select(outbox.c.seq).order_by(outbox.c.seq))).scalars())


async def test_lag_counts_the_records_a_group_has_not_committed_and_sets_the_gauge(harness: Any) -> None:
    harness.gate = asyncio.Event()
    await harness.start()
    await harness.bus.publish([probe_envelope("lag", seq) for seq in range(5)])
    gauge = lag_gauge().labels(group=harness.group, topic="probe.records")

    await harness.eventually(lambda: _lag_is(harness, 5))
    assert gauge._value.get() == 5
    harness.gate.set()

    assert sorted(await harness.until_applied("lag", 5)) == [0, 1, 2, 3, 4]
    await harness.eventually(lambda: _lag_is(harness, 0))
    assert gauge._value.get() == 0


async def _lag_is(harness: Any, value: int) -> bool:
    return bool((await harness.bus.lag()).get(harness.group) == value)
