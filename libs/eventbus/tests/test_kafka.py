"""Kafka-only behaviour: records that are not envelopes, the lag gauge, CloudEvents binary-mode headers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.base import Event
from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import Consumer, Handler, KafkaBus, list_dead_letters
from eventbus.bus import lag_gauge
from eventbus.kafka import _lanes, from_record, to_headers, to_value


def probe_envelope(stream: str, seq: int) -> Envelope:
    return Envelope.wrap(
        ProbeRecorded(stream=stream, seq=seq),
        source="/cityblocks/probe",
        tenant="44021",
        subject="probe/1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )


def test_an_envelope_travels_in_cloudevents_binary_mode() -> None:
    envelope = probe_envelope("h", 1)

    headers = dict(to_headers(envelope))

    assert headers["ce_id"] == envelope.id.encode()
    assert headers["ce_type"] == b"be.cityblocks.probe.ProbeRecorded.v1"
    assert headers["ce_source"] == b"/cityblocks/probe"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_subject"] == b"probe/1"
    assert headers["ce_tenant"] == b"44021"
    assert headers["ce_partitionkey"] == b"h"
    assert headers["traceparent"] == b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert headers["content-type"] == b"application/json"
    assert "ce_time" in headers
    assert from_record("probe.records", list(headers.items()), to_value(envelope)) == envelope


def test_headers_a_reader_does_not_know_are_ignored() -> None:
    envelope = probe_envelope("h", 2)
    headers = [*to_headers(envelope), ("ce_dlqerror", b"boom"), ("x-other", b"1")]

    assert from_record("probe.records", headers, to_value(envelope)) == envelope


@pytest.mark.parametrize("value", [b"not json", b"[1, 2]", None])
def test_a_record_that_is_not_an_envelope_is_refused(value: bytes | None) -> None:
    with pytest.raises(ValueError):
        from_record("probe.records", to_headers(probe_envelope("h", 3)), value)


def test_a_record_without_its_attributes_is_refused() -> None:
    with pytest.raises(ValueError):
        from_record("probe.records", [("ce_type", b"x")], b"{}")


def test_a_fetch_is_split_into_lanes_of_whole_partitions() -> None:
    partitions = [[probe(p, seq) for seq in range(size)] for p, size in enumerate([5, 1, 3, 2])]

    one, two = _lanes(partitions, 1), _lanes(partitions, 2)

    assert [len(lane) for lane in one] == [11]
    assert sorted(len(lane) for lane in two) == [5, 6]  # 5 | 3+2+1
    for lanes in (one, two, _lanes(partitions, 8)):
        assert sorted(e.id for lane in lanes for e in lane) == sorted(e.id for p in partitions for e in p)
        for lane in lanes:  # a partition's records stay together and in order
            for p in partitions:
                mine = [e.id for e in lane if e in p]
                assert mine in ([], [e.id for e in p])
    assert len(_lanes(partitions, 8)) == 4
    assert _lanes([], 3) == []


def probe(stream: int, seq: int) -> Envelope:
    return Envelope.wrap(
        ProbeRecorded(stream=f"s{stream}", seq=seq), source="/cityblocks/probe", tenant="44021"
    )


@pytest.mark.kafka
async def test_an_unreadable_record_is_dead_lettered_and_the_consumer_goes_on(kafka_harness: Any) -> None:
    harness = kafka_harness
    await harness.start()
    bus: KafkaBus = harness.bus
    good = probe_envelope("u", 2)
    await bus.publish_raw("probe.records", b"u", b"{not json", [("ce_id", b"broken-1")])
    await bus.publish_raw("probe.records", b"u", b'{"stream": "u", "seq": 1}', [("ce_type", b"nothing-else")])
    await bus.publish([good])

    assert await harness.until_applied("u", 1) == [2]
    await harness.eventually(lambda: _dead_letters(harness, 2))
    letters = await list_dead_letters(harness.sessionmaker, consumer=harness.group)
    assert letters[0].event_id == "broken-1"
    assert "JSONDecodeError" in letters[0].error
    assert "ValidationError" in letters[1].error
    assert letters[0].envelope["value"] == "{not json"
    dlq = await _read(bus, "probe.records.dlq", 2)
    assert [headers.get("ce_dlqconsumer") for headers in dlq] == [harness.group, harness.group]
    assert "JSONDecodeError" in dlq[0]["ce_dlqerror"]


async def _dead_letters(harness: Any, count: int) -> bool:
    return len(await list_dead_letters(harness.sessionmaker)) >= count


async def _read(bus: KafkaBus, topic: str, count: int) -> list[dict[str, str]]:
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


@pytest.mark.kafka
async def test_consumer_lag_is_exported_per_group_and_topic(kafka_harness: Any) -> None:
    harness = kafka_harness
    harness.gate = asyncio.Event()
    await harness.start()
    await harness.bus.publish([probe_envelope("g", seq) for seq in range(4)])
    gauge = lag_gauge().labels(group=harness.group, topic="probe.records")

    await harness.eventually(lambda: _lag_is(harness, 4))
    assert gauge._value.get() == 4
    harness.gate.set()
    await harness.until_applied("g", 4)
    await harness.eventually(lambda: _lag_is(harness, 0))
    assert gauge._value.get() == 0


async def _lag_is(harness: Any, value: int) -> bool:
    return bool((await harness.bus.lag()).get(harness.group) == value)


@pytest.mark.kafka
async def test_members_of_one_group_share_the_partitions_and_hand_them_over(kafka_harness: Any) -> None:
    harness = kafka_harness
    first: KafkaBus = harness.bus
    second = KafkaBus(first.bootstrap_servers, "eventbus-tests-2", topic_prefix=first.topic_prefix)
    subscriptions: dict[type[Event], Handler] = {ProbeRecorded: harness.apply_probe}
    Consumer(harness.group, harness.uow_factory, second, subscriptions, max_attempts=3, backoff=0.01)
    await harness.start()
    await second.start()
    try:
        await first.publish([probe_envelope(f"m{seq % 6}", seq) for seq in range(60)])
        await harness.eventually(lambda: _applied_total(harness, 60))
    finally:
        await second.stop()
    await first.publish([probe_envelope(f"m{seq % 6}", seq) for seq in range(60, 120)])

    await harness.eventually(lambda: _applied_total(harness, 120))
    for stream in range(6):
        assert await harness.applied(f"m{stream}") == list(range(stream, 120, 6))


async def _applied_total(harness: Any, count: int) -> bool:
    total = sum([len(await harness.applied(f"m{stream}")) for stream in range(6)])
    assert total <= count
    return total == count


@pytest.mark.kafka
async def test_a_key_lands_on_the_partition_the_producer_itself_would_choose(kafka_harness: Any) -> None:
    bus: KafkaBus = kafka_harness.bus
    await bus.start()
    envelopes = [probe_envelope(f"key-{n}", n) for n in range(12)]
    await bus.publish(envelopes)
    for envelope in envelopes:
        await bus.publish_raw("probe.records", envelope.partitionkey.encode(), b"{}", [])

    consumer = AIOKafkaConsumer(
        bus.physical("probe.records"), bootstrap_servers=bus.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    partitions: dict[bytes, set[int]] = {}
    read = 0
    try:
        async with asyncio.timeout(20):
            while read < 24:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        assert record.key is not None
                        partitions.setdefault(record.key, set()).add(record.partition)
                        read += 1
    finally:
        await consumer.stop()
    assert len(partitions) == 12
    assert all(len(found) == 1 for found in partitions.values())
    assert len(set.union(*partitions.values())) > 1
