"""The Kafka fixture itself (``lifeline.testing_kafka``): what the bridge and the Faust workers rely on."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from confluent_kafka import Producer

from lifeline.testing_kafka import MockKafka, read_topic

pytestmark = pytest.mark.integration

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright keeps an event loop running in the
    main thread for the whole session, and asyncio.run refuses to start beside it."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def produce(bootstrap: str, topic: str, n: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "log_level": 3})
    for i in range(n):
        key = b"S-%d" % (i % 60)
        p.produce(topic, b"v%d" % i, key, headers=[("mqtt_topic", b"lifeline/readings/gas/" + key)])
    assert p.flush(20) == 0


async def consume_group(bootstrap: str, topic: str, want: int, group: str) -> list[tuple[int, bytes, bytes]]:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False)
    await c.start()
    out: list[tuple[int, bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            while len(out) < want:
                for tp, msgs in (await c.getmany(timeout_ms=500)).items():
                    out.extend((tp.partition, m.key or b"", dict(m.headers)["mqtt_topic"]) for m in msgs)
        await c.commit()
    finally:
        await c.stop()
    return out


def test_kafka_mock_topic_with_n_partitions_read_by_an_aiokafka_group(kafka: MockKafka) -> None:
    """A topic made with 6 partitions has 6; an aiokafka consumer group (Faust's client) reads every record with
    its key and header, each key on one partition, and commits offsets the group resumes from."""
    kafka.create_topic("readings", 6)
    produce(kafka.bootstrap, "readings", 600)
    got = run_async(consume_group(kafka.bootstrap, "readings", 600, "workers"))
    assert len(got) == 600 and {p for p, _, _ in got} == set(range(6))
    by_key: dict[bytes, set[int]] = {}
    for p, key, _ in got:
        by_key.setdefault(key, set()).add(p)
    assert all(len(ps) == 1 for ps in by_key.values())
    assert {h for _, _, h in got} == {b"lifeline/readings/gas/S-%d" % i for i in range(60)}
    produce(kafka.bootstrap, "readings", 10)
    assert len(run_async(consume_group(kafka.bootstrap, "readings", 10, "workers"))) == 10  # resumed


def test_kafka_mock_auto_created_topic_has_four_partitions(kafka: MockKafka) -> None:
    """Producing to an unknown topic creates it with the mock's fixed default of 4 partitions."""
    produce(kafka.bootstrap, "auto", 40)
    assert {r.partition for r in read_topic(kafka.bootstrap, "auto", 40)} == {0, 1, 2, 3}


def test_kafka_mock_brokers_down_then_up_keeps_the_data(kafka: MockKafka) -> None:
    """Brokers stopped and started again: what was written stays, and a producer's pending writes go through."""
    produce(kafka.bootstrap, "readings", 100)
    kafka.brokers_down()
    p = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "message.timeout.ms": 0,
                  "log_level": 0})
    for i in range(50):
        p.produce("readings", b"late%d" % i, b"S-1")
    assert p.flush(2) == 50  # nothing gets through while the brokers are down
    kafka.brokers_up()
    assert p.flush(30) == 0
    values = Counter(r.value for r in read_topic(kafka.bootstrap, "readings", 150))
    assert values == Counter([b"v%d" % i for i in range(100)] + [b"late%d" % i for i in range(50)])
