"""The in-process bus keeps a bounded log, and never drops a record a group still has to read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import InProcessBus

TOPIC = ProbeRecorded.topic


def envelopes(count: int, start: int = 0) -> list[Envelope]:
    # One key: every record in one partition, in order.
    return [
        Envelope.wrap(ProbeRecorded(stream="s", seq=start + i), source="/test", tenant="44021")
        for i in range(count)
    ]


def seqs(records: Sequence[Envelope]) -> list[int]:
    return [int(e.data["seq"]) for e in records]


async def wait_for(check: Callable[[], object], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the bus's consumer task runs in between; nothing to wait on
            await asyncio.sleep(0.005)


async def test_a_topic_nobody_reads_keeps_only_its_last_records() -> None:
    bus = InProcessBus(retain=10)
    for start in range(0, 100, 7):
        await bus.publish(envelopes(7, start))

    kept = seqs([r.envelope for r in bus.records(TOPIC)])

    assert 10 <= len(kept) <= 20
    assert kept == list(range(105 - len(kept), 105))


async def test_records_a_group_has_not_read_are_kept_until_it_has() -> None:
    bus = InProcessBus(retain=5, max_batch=3)
    seen: list[int] = []
    gate = asyncio.Event()

    async def slow(batch: Sequence[Envelope]) -> None:
        await gate.wait()
        seen.extend(seqs(batch))

    async def one(envelope: Envelope) -> None:
        raise AssertionError("batches only")

    bus.subscribe("slow", [TOPIC], one, deliver_batch=slow)
    await bus.start()
    try:
        await bus.publish(envelopes(200))
        # The group is stuck on its first batch: nothing it has not committed may go.
        assert seqs([r.envelope for r in bus.records(TOPIC)]) == list(range(200))
        gate.set()
        await wait_for(lambda: len(seen) == 200)
        assert seen == list(range(200))
        await bus.publish(envelopes(20, 200))
        await wait_for(lambda: len(seen) == 220)
        assert seen == list(range(220))
        assert len(bus.records(TOPIC)) <= 10
        assert (await bus.lag())["slow"] == 0
    finally:
        await bus.stop()


async def test_a_stopped_group_resumes_where_it_was_and_a_new_group_starts_at_the_oldest_record_kept() -> (
    None
):
    bus = InProcessBus(retain=4, max_batch=50)
    first: list[int] = []

    async def collect_first(batch: Sequence[Envelope]) -> None:
        first.extend(seqs(batch))

    async def one(envelope: Envelope) -> None:
        raise AssertionError("batches only")

    bus.subscribe("first", [TOPIC], one, deliver_batch=collect_first)
    await bus.start()
    await bus.publish(envelopes(10))
    await wait_for(lambda: len(first) == 10)
    await bus.stop()

    # While `first` is away, 30 more: it has not read them, so they stay although they exceed `retain`.
    await bus.publish(envelopes(30, 10))
    assert len(bus.records(TOPIC)) >= 30

    later: list[int] = []

    async def collect_later(batch: Sequence[Envelope]) -> None:
        later.extend(seqs(batch))

    bus.subscribe("first", [TOPIC], one, deliver_batch=collect_first)
    bus.subscribe("later", [TOPIC], one, deliver_batch=collect_later)
    await bus.start()
    try:
        await wait_for(lambda: len(first) == 40 and later and later[-1] == 39)
        assert first == list(range(40))
        assert later == list(range(later[0], 40))
    finally:
        await bus.stop()
