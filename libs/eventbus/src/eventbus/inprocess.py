"""An in-memory bus for the embedded mode and fast tests, with Kafka's semantics per consumer group."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field

from contracts.envelope import Envelope
from eventbus.bus import Deliver, DeliverBatch, Reject, Subscription, deliver_partitions, lag_gauge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    envelope: Envelope
    headers: Mapping[str, str] = field(default_factory=dict)


class _Partition:
    """A partition's retained records; `base` is the offset of the first one (offsets never change)."""

    __slots__ = ("base", "records")

    def __init__(self) -> None:
        self.base = 0
        self.records: list[Record] = []

    @property
    def end(self) -> int:
        return self.base + len(self.records)

    def read(self, start: int, count: int) -> list[Record]:
        first = max(start, self.base) - self.base
        return self.records[first : first + count]

    def drop_before(self, offset: int) -> None:
        if offset > self.base:
            del self.records[: offset - self.base]
            self.base = offset


class InProcessBus:
    """Per-topic logs split into partitions by key hash; groups keep committed offsets across stop/start.

    Retention as a broker's, but never losing a record a group still has to read: a partition keeps its last
    `retain` records, and older ones until every group that ever subscribed to the topic has committed them
    (a group that subscribes later starts at the oldest record kept). Without it a long-running embedded
    platform would hold every event it ever published in memory.
    """

    def __init__(
        self, partitions: int = 3, max_batch: int = 500, retry_delay: float = 0.2, retain: int = 100
    ) -> None:
        self._partitions = partitions
        self._max_batch = max_batch
        self._retry_delay = retry_delay
        self._retain = retain
        self._logs: dict[str, list[_Partition]] = {}
        self._committed: dict[str, dict[tuple[str, int], int]] = {}
        self._readers: dict[str, set[str]] = {}  # topic -> every group that subscribed to it
        self._subscriptions: list[Subscription] = []
        self._wakeups: list[asyncio.Event] = []
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        deliver: Deliver,
        *,
        deliver_batch: DeliverBatch | None = None,
        reject: Reject | None = None,
        concurrency: int = 1,
    ) -> None:
        if self._tasks:
            raise RuntimeError("subscribe before start")
        if any(s.group == group for s in self._subscriptions):
            raise ValueError(f"group {group!r} is already subscribed")
        subscription = Subscription(group, tuple(topics), deliver, deliver_batch, reject, concurrency)
        self._subscriptions.append(subscription)
        for topic in topics:
            self._readers.setdefault(topic, set()).add(group)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            self._log(topic)

    async def start(self) -> None:
        for sub in self._subscriptions:
            await self.ensure_topics(sub.topics)
            self._committed.setdefault(sub.group, {})
            wakeup = asyncio.Event()
            self._wakeups.append(wakeup)
            self._tasks.append(asyncio.create_task(self._run(sub, wakeup), name=f"inprocess-{sub.group}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._wakeups.clear()
        self._subscriptions.clear()

    async def publish(
        self,
        envelopes: Sequence[Envelope],
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        touched: set[tuple[str, int]] = set()
        for envelope in envelopes:
            name = topic or envelope.topic
            p = self.partition_of(envelope.partitionkey)
            self._log(name)[p].records.append(Record(envelope, dict(headers or {})))
            touched.add((name, p))
        for name, p in touched:
            self._trim(name, p)
        for wakeup in self._wakeups:
            wakeup.set()

    async def enqueue(
        self,
        envelopes: Sequence[Envelope],
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Awaitable[None]:
        await self.publish(envelopes, topic=topic, headers=headers)
        return _done()

    async def lag(self) -> dict[str, int]:
        return {sub.group: self._group_lag(sub) for sub in self._subscriptions}

    def records(self, topic: str) -> list[Record]:
        """The retained records of a topic, partition by partition (for tests)."""
        return [record for partition in self._logs.get(topic, []) for record in partition.records]

    def partition_of(self, key: str) -> int:
        return zlib.crc32(key.encode()) % self._partitions

    def _log(self, topic: str) -> list[_Partition]:
        log = self._logs.get(topic)  # not setdefault: that would build the empty partitions on every call
        if log is None:
            log = self._logs[topic] = [_Partition() for _ in range(self._partitions)]
        return log

    def _trim(self, topic: str, p: int) -> None:
        """Drop what every reader of the topic has committed, beyond the last `retain` records.

        Only once the partition holds twice `retain`, so that dropping costs little per record.
        """
        partition = self._log(topic)[p]
        if len(partition.records) <= 2 * self._retain:
            return
        done = [
            self._committed.get(group, {}).get((topic, p), partition.base)
            for group in self._readers.get(topic, ())
        ]
        partition.drop_before(min([partition.end - self._retain, *done]))

    def _group_lag(self, sub: Subscription) -> int:
        """Records the group has not committed; sets the lag gauge per topic as the Kafka bus does."""
        committed = self._committed.get(sub.group, {})
        total = 0
        for topic in sub.topics:
            lag = sum(
                partition.end - committed.get((topic, p), partition.base)
                for p, partition in enumerate(self._log(topic))
            )
            lag_gauge().labels(group=sub.group, topic=topic).set(lag)
            total += lag
        return total

    async def _run(self, sub: Subscription, wakeup: asyncio.Event) -> None:
        while True:
            wakeup.clear()
            if not await self._drain(sub):
                await wakeup.wait()

    async def _drain(self, sub: Subscription) -> bool:
        """Deliver one batch from every partition that has new records; True when anything was delivered."""
        offsets = self._committed[sub.group]
        pending: list[tuple[str, int, int, list[Envelope]]] = []
        for topic in sub.topics:
            for p, partition in enumerate(self._log(topic)):
                start = max(offsets.get((topic, p), 0), partition.base)
                batch = [r.envelope for r in partition.read(start, self._max_batch)]
                if batch:
                    pending.append((topic, p, start, batch))
        if not pending:
            return False
        outcomes = await deliver_partitions(sub, [batch for *_, batch in pending])
        for (topic, p, start, batch), error in zip(pending, outcomes, strict=True):
            if error is None:
                offsets[(topic, p)] = start + len(batch)
                self._trim(topic, p)
        failed = [error for error in outcomes if error is not None]
        if failed:
            log.error("delivery to %s failed; retrying", sub.group, exc_info=failed[0])
            await asyncio.sleep(self._retry_delay)
        return True


async def _done() -> None:
    return None
