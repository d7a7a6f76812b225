"""The Kafka bus on aiokafka: idempotent durable publish, CloudEvents binary mode, commit after delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from contracts.envelope import Envelope
from eventbus.bus import (
    DLQ_ATTEMPTS,
    DLQ_CONSUMER,
    DLQ_ERROR,
    Deliver,
    DeliverBatch,
    Reject,
    Subscription,
    Undecodable,
    deliver_partitions,
    dlq_topic,
    lag_gauge,
)
from eventbus.codec import from_json, to_json

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

# Attributes that travel in headers without the `ce_` prefix (CloudEvents Kafka binding, W3C trace context).
_PLAIN_HEADERS = {"datacontenttype": "content-type", "traceparent": "traceparent"}
_ATTRIBUTE_OF_PLAIN = {header: attr for attr, header in _PLAIN_HEADERS.items()}
_ENVELOPE_ATTRIBUTES = set(Envelope.model_fields) - {"topic", "data"}


def to_headers(envelope: Envelope, extra: Mapping[str, str] | None = None) -> Headers:
    headers = [
        (_PLAIN_HEADERS.get(name, f"ce_{name}"), value.encode())
        for name, value in envelope.attributes().items()
    ]
    headers += [(name, value.encode()) for name, value in (extra or {}).items()]
    return headers


def to_value(envelope: Envelope) -> bytes:
    return to_json(envelope.data)


def from_record(topic: str, headers: Sequence[tuple[str, bytes]], value: bytes | None) -> Envelope:
    """Rebuild an envelope from a record, ignoring unknown headers (tolerant reader); raises when invalid."""
    attrs: dict[str, str] = {}
    for name, raw in headers:
        attr = _ATTRIBUTE_OF_PLAIN.get(name) or (name[3:] if name.startswith("ce_") else None)
        if attr in _ENVELOPE_ATTRIBUTES:
            attrs[attr] = raw.decode()
    data = from_json(value or b"null")
    if not isinstance(data, dict):
        raise ValueError(f"the record value is not a JSON object: {type(data).__name__}")
    return Envelope.from_attributes(attrs, topic=topic, data=data)


class KafkaBus:
    """One idempotent producer (acks=all) and one consumer per subscribed group.

    `topic_prefix` namespaces physical topic names (tests, shared clusters); envelopes keep the logical topic.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str,
        partitions: int = 3,
        *,
        replication_factor: int = 1,
        topic_prefix: str = "",
        linger_ms: int = 1,
        max_batch_bytes: int = 512 * 1024,
        fetch_max_records: int = 1000,
        poll_timeout_ms: int = 200,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1_000,
        retry_delay: float = 0.5,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.topic_prefix = topic_prefix
        self._linger_ms = linger_ms
        self._max_batch_bytes = max_batch_bytes
        self._consumer_options: dict[str, Any] = {
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
        }
        self._fetch_max_records = fetch_max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_delay = retry_delay
        self._subscriptions: list[Subscription] = []
        self._workers: list[_GroupWorker] = []
        self._producer: AIOKafkaProducer | None = None
        # The producer's own default, so a key lands on the partition `send` would have chosen.
        self._partitioner = DefaultPartitioner()
        self._known_topics: set[str] = set()

    def physical(self, topic: str) -> str:
        return self.topic_prefix + topic

    def logical(self, topic: str) -> str:
        return topic.removeprefix(self.topic_prefix)

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
        if self._workers:
            raise RuntimeError("subscribe before start")
        if any(s.group == group for s in self._subscriptions):
            raise ValueError(f"group {group!r} is already subscribed")
        subscription = Subscription(group, tuple(topics), deliver, deliver_batch, reject, concurrency)
        self._subscriptions.append(subscription)

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            max_batch_size=self._max_batch_bytes,
        )
        await self._producer.start()
        topics = {t for sub in self._subscriptions for t in sub.topics}
        await self.ensure_topics(sorted(topics | {dlq_topic(t) for t in topics}))
        for sub in self._subscriptions:
            worker = _GroupWorker(self, sub, self._new_consumer(sub.group))
            await worker.start()
            self._workers.append(worker)

    async def stop(self) -> None:
        for worker in self._workers:
            await worker.stop()
        self._workers.clear()
        self._subscriptions.clear()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics with the configured partitions (an existing topic is left as it is)."""
        missing = [t for t in topics if t not in self._known_topics]
        if not missing:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id=self.client_id)
        await admin.start()
        try:
            new = [NewTopic(self.physical(t), self.partitions, self.replication_factor) for t in missing]
            response = await admin.create_topics(new)
        finally:
            await admin.close()
        for name, code, *_ in response.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                raise for_code(code)(f"cannot create topic {name}")
        self._known_topics.update(missing)

    async def publish(
        self,
        envelopes: Sequence[Envelope],
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send every record, then wait until the broker acknowledged all of them (acks=all)."""
        await (await self.enqueue(envelopes, topic=topic, headers=headers))

    async def enqueue(
        self,
        envelopes: Sequence[Envelope],
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Awaitable[None]:
        """Hand every record to the producer in order; the result completes once all are acknowledged.

        Records are packed into one batch per partition (aiokafka's batch API costs a third of `send` per
        record); batches of one partition are queued in order, so the order per key holds.
        """
        producer = self._running_producer()
        await self.ensure_topics(sorted({topic or e.topic for e in envelopes}))
        batches = _Batches(producer, self._partitioner)
        for envelope in envelopes:
            physical = self.physical(topic or envelope.topic)
            key = envelope.partitionkey.encode()
            await batches.add(physical, key, to_value(envelope), to_headers(envelope, headers))
        return _all_done(await batches.send_all())

    async def publish_raw(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        producer = self._running_producer()
        await self.ensure_topics([topic])
        await (await producer.send(self.physical(topic), value=value, key=key, headers=headers))

    async def lag(self) -> dict[str, int]:
        return {worker.subscription.group: await worker.lag() for worker in self._workers}

    def _running_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the Kafka bus is not started")
        return self._producer

    def _new_consumer(self, group: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._fetch_max_records,
            fetch_max_wait_ms=self._poll_timeout_ms,
            **self._consumer_options,
        )


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: _GroupWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.commit(revoked)
        self._worker.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("%s: assigned %s", self._worker.subscription.group, sorted(assigned))


class _GroupWorker:
    """The fetch → deliver → commit loop of one consumer group."""

    def __init__(self, bus: KafkaBus, subscription: Subscription, consumer: AIOKafkaConsumer) -> None:
        self.bus = bus
        self.subscription = subscription
        self.consumer = consumer
        self.processed: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._committing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        topics = [self.bus.physical(t) for t in self.subscription.topics]
        self.consumer.subscribe(topics, listener=_CommitOnRevoke(self))
        await self.consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"kafka-{self.subscription.group}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.commit(set(self.processed))
        await self.consumer.stop()

    async def commit(self, partitions: set[TopicPartition]) -> None:
        """Commit what was processed of `partitions`, after any commit still running in the background."""
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        await self._commit(partitions)

    def commit_soon(self) -> None:
        """Commit in the background, so that the next fetch does not wait for the group coordinator.

        One commit at a time, always of the latest processed offsets, so a commit never goes backwards.
        """
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_processed())

    async def _commit_processed(self) -> None:
        failures = 0
        while failures < 3:
            assigned = self.consumer.assignment()
            processed = self.processed.items()
            pending = {tp for tp, at in processed if tp in assigned and self.committed.get(tp) != at}
            if not pending:
                break
            if not await self._commit(pending):
                failures += 1
                await asyncio.sleep(self.bus._retry_delay)
        with contextlib.suppress(KafkaError):
            await self.lag()

    async def _commit(self, partitions: set[TopicPartition]) -> bool:
        # Only partitions still ours: a batch that finished after a revoke must not move another member back.
        assigned = self.consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in self.processed.items()
            if tp in partitions and tp in assigned and self.committed.get(tp) != offset
        }
        if not offsets:
            return False
        try:
            await self.consumer.commit(offsets)
        except KafkaError:
            # Partitions lost in a rebalance: the next owner re-delivers and its inbox absorbs the duplicates.
            log.warning("%s: commit failed", self.subscription.group, exc_info=True)
            return False
        self.committed.update(offsets)
        return True

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop what we knew of partitions we lost: another member may move them on before they come back."""
        for tp in partitions:
            self.processed.pop(tp, None)
            self.committed.pop(tp, None)

    async def lag(self) -> int:
        total = 0
        per_topic: dict[str, int] = {}
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            done = self.committed.get(tp)
            if done is None:
                # Asked of the coordinator once per partition; afterwards our own commits are the truth.
                fetched = await self.consumer.committed(tp) or 0
                # A commit may have landed while we asked: it is newer than the coordinator's answer.
                done = self.committed.setdefault(tp, fetched)
            topic = self.bus.logical(tp.topic)
            per_topic[topic] = per_topic.get(topic, 0) + max(highwater - done, 0)
            total += max(highwater - done, 0)
        for topic, value in per_topic.items():
            lag_gauge().labels(group=self.subscription.group, topic=topic).set(value)
        return total

    async def _run(self) -> None:
        while True:
            try:
                batches = await self.consumer.getmany(
                    timeout_ms=self.bus._poll_timeout_ms, max_records=self.bus._fetch_max_records
                )
            except KafkaError:
                log.exception("%s: fetch failed; retrying", self.subscription.group)
                await asyncio.sleep(self.bus._retry_delay)
                continue
            if not batches:
                continue
            try:
                await self._deliver(batches)
            except Exception:
                # Nothing of the batch is committed: fetch it again after a pause (the inbox absorbs repeats).
                log.exception("%s: delivery failed; fetching the batch again", self.subscription.group)
                for tp, records in batches.items():
                    self.consumer.seek(tp, records[0].offset)
                await asyncio.sleep(self.bus._retry_delay)
                continue
            for tp, records in batches.items():
                self.processed[tp] = records[-1].offset + 1
            self.commit_soon()

    async def _deliver(self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """The fetched records in as many lanes as the subscription's concurrency, each in one delivery.

        A partition's records stay in one lane, in order. Any lane failing fails the fetch: the caller
        fetches all of it again, and the inbox absorbs what the other lanes applied.
        """
        partitions: list[list[Envelope]] = []
        for records in batches.values():
            envelopes = [envelope for record in records if (envelope := await self._read(record)) is not None]
            if envelopes:
                partitions.append(envelopes)
        lanes = _lanes(partitions, self.subscription.concurrency)
        for error in await deliver_partitions(self.subscription, lanes):
            if error is not None:
                raise error

    async def _read(self, record: ConsumerRecord[bytes, bytes]) -> Envelope | None:
        """The record's envelope, or None after sending an unreadable record to the DLQ topic."""
        topic = self.bus.logical(record.topic)
        try:
            return from_record(topic, record.headers, record.value)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error(
                "%s: unreadable record %s/%d/%d: %s",
                self.subscription.group,
                topic,
                record.partition,
                record.offset,
                error,
            )
            extra = {DLQ_ERROR: error[:4000], DLQ_CONSUMER: self.subscription.group, DLQ_ATTEMPTS: "1"}
            headers = list(record.headers) + [(k, v.encode()) for k, v in extra.items()]
            await self.bus.publish_raw(dlq_topic(topic), record.key, record.value, headers)
            if self.subscription.reject is not None:
                await self.subscription.reject(_undecodable(topic, record, error))
            return None


def _undecodable(topic: str, record: ConsumerRecord[bytes, bytes], error: str) -> Undecodable:
    headers = {name: raw.decode(errors="replace") for name, raw in record.headers}
    value = (record.value or b"").decode(errors="replace")
    return Undecodable(topic, record.partition, record.offset, headers, value, error)


class _Batches:
    """Records packed per partition, a full batch sent at once and the rest by `send_all`."""

    def __init__(self, producer: AIOKafkaProducer, partitioner: DefaultPartitioner) -> None:
        self._producer = producer
        self._partitioner = partitioner
        self._open: dict[tuple[str, int], BatchBuilder] = {}
        self._partitions: dict[str, list[int]] = {}
        self._sent: list[Awaitable[Any]] = []

    async def add(self, topic: str, key: bytes, value: bytes, headers: Headers) -> None:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(await self._producer.partitions_for(topic))
        slot = (topic, self._partitioner(key, partitions, partitions))
        batch = self._open.get(slot)
        if batch is not None and batch.append(key=key, value=value, timestamp=None, headers=headers):
            return
        if batch is not None:
            self._sent.append(await self._producer.send_batch(batch, slot[0], partition=slot[1]))
        batch = self._open[slot] = self._producer.create_batch()
        if not batch.append(key=key, value=value, timestamp=None, headers=headers):
            raise ValueError(f"a record of {len(value)} bytes does not fit in a batch")

    async def send_all(self) -> list[Awaitable[Any]]:
        for (topic, partition), batch in self._open.items():
            self._sent.append(await self._producer.send_batch(batch, topic, partition=partition))
        self._open.clear()
        return self._sent


async def _all_done(futures: Sequence[Awaitable[Any]]) -> None:
    await asyncio.gather(*futures)


def _lanes(partitions: list[list[Envelope]], count: int) -> list[list[Envelope]]:
    """Whole partitions spread over at most `count` lanes, the largest first onto the lightest lane."""
    lanes: list[list[Envelope]] = [[] for _ in range(max(1, min(count, len(partitions))))]
    for records in sorted(partitions, key=len, reverse=True):
        min(lanes, key=len).extend(records)
    return [lane for lane in lanes if lane]
