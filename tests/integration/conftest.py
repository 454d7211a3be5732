"""A real Mosquitto for the integration tests, on a free loopback port, with lifeline's shipped settings;
a real Kafka-protocol broker (librdkafka's mock cluster, ``lifeline.testing_kafka``) for the bridge's.

The broker is started from ``deploy/mosquitto.conf`` by ``lifeline.testing_broker`` (listener and
persistence path rewritten for the test), and exactly that process is terminated at the end. If
``mosquitto`` is missing the fixture FAILS: the test command installs it (``apt-get install mosquitto
mosquitto-clients``); never silently skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifeline.testing_broker import Broker, BrokerError, start_broker, stop_broker
from lifeline.testing_kafka import KafkaMockError, MockKafka, start_kafka

__all__ = ["Broker", "MockKafka", "kafka", "mosquitto"]


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A running Mosquitto (lifeline's settings) on a free loopback port: yields host/port."""
    try:
        broker = start_broker(tmp_path_factory.mktemp("mosquitto"))
    except BrokerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield broker
    finally:
        stop_broker(broker.proc)


@pytest.fixture
def kafka() -> Iterator[MockKafka]:
    """librdkafka's mock cluster (3 brokers) in its own process, fresh for each test (``lifeline.testing_kafka``):
    ``.bootstrap``, ``.create_topic(name, n)``, ``.brokers_down()`` / ``.brokers_up()``."""
    try:
        cluster = start_kafka()
    except KafkaMockError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
