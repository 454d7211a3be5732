"""The embedded amqtt broker carries paho QoS 1 both ways, and the runner works against it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lifeline.embedded_broker import EmbeddedBroker
from lifeline.sinks.store import AlertStore
from tests.integration.helpers import Collector, Publisher, config, gas, start_thread_runner, wait_for

pytestmark = pytest.mark.integration


def test_embedded_broker_paho_qos1_round_trip() -> None:
    """A paho QoS 1 publish is PUBACKed and delivered to a QoS 1 subscriber."""
    with EmbeddedBroker() as broker:
        col = Collector(broker.host, broker.port, ["t/#"])
        pub = Publisher(broker.host, broker.port)
        for i in range(50):
            pub.publish(f"t/{i}", b'{"n": %d}' % i)
        pub.wait_acked(10)
        wait_for(lambda: len(col.on("t/")) == 50, 10, "50 messages through the embedded broker")
        pub.close()
        col.close()
    assert sorted(p["n"] for _, p in col.on("t/")) == list(range(50))


def test_embedded_broker_runner_end_to_end(tmp_path: Path) -> None:
    """Readings through the embedded broker become stored and published alerts."""
    with EmbeddedBroker() as broker:
        col = Collector(broker.host, broker.port, ["lifeline/alerts/#"])
        runner = start_thread_runner(config(broker.port, tmp_path, client_id="it-embedded"))
        pub = Publisher(broker.host, broker.port)
        t0 = time.time() - 600
        try:
            for i, v in enumerate([1, 12, 55, 3]):
                pub.publish(*gas(1, t0 + i, v, seq=i))
            pub.wait_acked(10)
            wait_for(lambda: len(col.on("lifeline/alerts/gas/gas-0001")) >= 3, 15, "alerts via the embedded broker")
        finally:
            pub.close()
            runner.stop()
            col.close()
    with AlertStore(tmp_path / "lifeline.db") as store:
        assert [e.event.value for e in store.events()] == ["fired", "escalated", "resolved"]
