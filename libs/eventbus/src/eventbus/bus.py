"""The bus protocol both adapters implement: durable publish, consumer groups, commit after delivery."""

from __future__ import annotations

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
    ) -> None:
        """Register a consumer group before `start`; offsets are committed only after delivery returned.

        With `deliver_batch` the bus may hand over several records at once (in order per partition).
        """
        ...

    async def lag(self) -> dict[str, int]:
        """Records not yet committed, per consumer group."""
        ...

    async def ensure_topics(self, topics: Sequence[str]) -> None: ...
