"""The bus protocol both adapters implement: durable publish, consumer groups, commit after delivery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from prometheus_client import Gauge

from contracts.envelope import Envelope

Deliver = Callable[[Envelope], Awaitable[None]]
DeliverBatch = Callable[[Sequence[Envelope]], Awaitable[None]]

DLQ_SUFFIX = ".dlq"
DLQ_ERROR = "ce_dlqerror"
DLQ_CONSUMER = "ce_dlqconsumer"
DLQ_ATTEMPTS = "ce_dlqattempts"


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


@cache
def lag_gauge() -> Gauge:
    """The consumer-lag gauge both buses set, registered once per process on first use."""
    return Gauge(
        "cityblocks_consumer_lag", "Records not yet committed by a consumer group", ["group", "topic"]
    )


@dataclass(frozen=True)
class Undecodable:
    """A record that could not be read as an envelope; the bus has already forwarded it to the DLQ topic."""

    topic: str
    partition: int
    offset: int
    headers: Mapping[str, str]
    value: str
    error: str


Reject = Callable[[Undecodable], Awaitable[None]]


@dataclass
class Subscription:
    group: str
    topics: tuple[str, ...]
    deliver: Deliver
    deliver_batch: DeliverBatch | None = None
    reject: Reject | None = None
    concurrency: int = 1  # partitions delivered at once (each in its own `deliver_batch`)


async def deliver_partitions(
    sub: Subscription, partitions: Sequence[Sequence[Envelope]]
) -> list[Exception | None]:
    """Deliver each partition's records in their order, up to `sub.concurrency` partitions at a time.

    Returns each partition's outcome (None or the error), in the given order. Records of one key share a
    partition, so the order per key holds. Partitions delivered at the same time take separate transactions,
    which the handlers already allow: members of a consumer group in other processes do the same. While one
    transaction waits for the database, the next one's Python work runs.
    """
    if sub.concurrency <= 1 or len(partitions) <= 1:
        outcomes: list[Exception | None] = []
        for records in partitions:
            outcomes.append(await _outcome(sub, records))
        return outcomes
    slots = asyncio.Semaphore(sub.concurrency)

    async def one(records: Sequence[Envelope]) -> Exception | None:
        async with slots:
            return await _outcome(sub, records)

    return list(await asyncio.gather(*(one(records) for records in partitions)))


async def _outcome(sub: Subscription, records: Sequence[Envelope]) -> Exception | None:
    try:
        await deliver(sub, records)
    except Exception as error:
        return error
    return None


async def deliver(sub: Subscription, records: Sequence[Envelope]) -> None:
    """Hand records to a subscription: as one batch when it takes batches, else one by one."""
    if not records:
        return
    if sub.deliver_batch is not None:
        await sub.deliver_batch(records)
        return
    for envelope in records:
        await sub.deliver(envelope)


class Bus(Protocol):
    """Topics of envelopes, partitioned by key; each consumer group sees every record once per commit."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(
        self,
        envelopes: Sequence[Envelope],
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish durably (returns once every record is stored); `topic` overrides the envelopes' own."""
        ...

    async def enqueue(
        self,
        envelopes: Sequence[Envelope],
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Awaitable[None]:
        """Hand the records over in order and return; awaiting the result waits until they are durable.

        Batches enqueued one after the other keep their order per key, even when their results are awaited
        later.
        """
        ...

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
        """Register a consumer group before `start`; offsets are committed only after delivery returned.

        With `deliver_batch` the bus may hand over several records at once (in order per partition), and with
        `concurrency` above one, the records of that many partitions at the same time.
        """
        ...

    async def lag(self) -> dict[str, int]:
        """Records not yet committed, per consumer group."""
        ...

    async def ensure_topics(self, topics: Sequence[str]) -> None: ...
