"""The session broker is a real Kafka: records produced with safe settings reach a consumer group."""

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.kafka


async def test_records_produced_come_back_in_order_per_key(kafka_bootstrap: str) -> None:
    topic = f"infra.roundtrip.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for seq in range(10):
            await producer.send_and_wait(topic, f"{seq}".encode(), key=b"stream-a", headers=[("ce_id", b"x")])
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"infra-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        received: list[int] = []
        while len(received) < 10:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, "no records within 10 s"
            for records in batches.values():
                received.extend(int(record.value) for record in records)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert received == list(range(10))
