"""The bridge's pure parts: which MQTT messages may be acknowledged, and the Kafka key of a topic."""

from __future__ import annotations

import pytest

from lifeline.commands.bridge import parse_kafka_config
from lifeline.errors import ConfigError
from lifeline.kafka.acks import AckWindow
from lifeline.kafka.bridge import BridgeError, BridgeSettings, sensor_key
from lifeline.model import DeadLetter


def test_ack_window_acks_in_receive_order_only_what_kafka_wrote() -> None:
    """Kafka answers out of order (partitions); PUBACKs go out in receive order, up to the first unanswered."""
    w = AckWindow()
    a, b, c = w.add(1), w.add(2), w.add(3)
    w.written(c)
    assert w.ready() == [] and len(w) == 3  # 1 is still waiting: nothing may be acknowledged
    w.written(a)
    assert w.ready() == [1] and len(w) == 2
    w.written(b)
    assert w.ready() == [2, 3] and len(w) == 0


def test_ack_window_never_acks_a_message_of_an_earlier_connection() -> None:
    """After a reconnect the broker resends unacknowledged messages and may reuse their ids: old slots are dropped."""
    w = AckWindow()
    old = w.add(7)
    w.new_connection()
    new = w.add(7)  # the resent copy, same packet id
    w.written(old)
    assert w.ready() == [] and w.stale_dropped == 1 and len(w) == 1
    w.written(new)
    assert w.ready() == [7]


def test_ack_window_failed_write_is_not_acknowledged_and_does_not_block() -> None:
    """A message that could not be written anywhere stays with the broker; the ones after it are acknowledged."""
    w = AckWindow()
    a, b = w.add(1), w.add(2)
    w.failed(a)
    w.written(b)
    assert w.ready() == [2] and w.failed_dropped == 1


@pytest.mark.parametrize(("topic", "key"), [
    ("lifeline/readings/gas/GAS-0001", b"GAS-0001"),
    ("lifeline/readings/water/水表-7", "水表-7".encode()),
])
def test_sensor_key_is_the_last_topic_level(topic: str, key: bytes) -> None:
    """The record key is the sensor id, so one sensor's readings stay on one partition."""
    assert sensor_key(topic, "lifeline/readings") == key


@pytest.mark.parametrize("topic", ["lifeline/readings/gas", "lifeline/readings/gas/", "lifeline/readings/gas/a/b",
                                   "other/gas/s1", "lifeline/readings//s1"])
def test_sensor_key_of_a_topic_without_sensor_is_a_bad_topic_dead_letter(topic: str) -> None:
    """A topic that is not <prefix>/<domain>/<sensor_id> yields a dead letter naming the topic."""
    dead = sensor_key(topic, "lifeline/readings")
    assert isinstance(dead, DeadLetter) and dead.reason == "bad_topic" and dead.topic == topic
    assert repr(topic) in dead.detail


def test_bridge_settings_reject_a_window_mqtt_cannot_express() -> None:
    """--max-inflight is MQTT 5's Receive Maximum: 1..65535."""
    assert BridgeSettings(max_inflight=65535).problems() == []
    assert "--max-inflight" in BridgeSettings(max_inflight=0).problems()[0]
    with pytest.raises(BridgeError, match="65535"):
        from lifeline.kafka.bridge import Bridge

        Bridge(BridgeSettings(max_inflight=70_000))


def test_parse_kafka_config_pairs_and_errors() -> None:
    """--kafka-config KEY=VALUE (values may contain '='); anything else names the bad item."""
    assert parse_kafka_config(["security.protocol=SASL_SSL", "sasl.password=a=b"]) == {
        "security.protocol": "SASL_SSL", "sasl.password": "a=b"}
    with pytest.raises(ConfigError, match="'nonsense'"):
        parse_kafka_config(["nonsense"])
