"""Bridge throughput: QoS 1 messages moved from Mosquitto to Kafka and acknowledged by ``lifeline bridge``,
against a bare paho subscriber drained from the same broker, of the same messages, in the same run.

One run of this command:

1. starts its own Mosquitto on a free loopback port with the shipped settings (``deploy/mosquitto.conf``:
   raised queue, persistence; ``lifeline.testing_broker``) and librdkafka's mock cluster (3 brokers, a real
   Kafka-protocol server on loopback, ``lifeline.testing_kafka``);
2. takes N messages of the demo city (the simulators' ``demo`` scenario), one reading per message, topic
   ``lifeline/readings/<domain>/<sensor>``, as ``benchmarks/e2e_throughput.py`` does;
3. per run: creates one empty persistent session per receiver, publishes the N messages once with QoS 1
   (every PUBACK awaited: the broker has queued them for both offline sessions), then drains each session in
   turn (the order alternates between runs):

   (a) a bare paho-mqtt subscriber: QoS 1, persistent session, ``on_message`` only counts;
   (b) the bridge (``lifeline.kafka.bridge.Bridge``, the code behind ``lifeline bridge``, default settings:
       10,000 in flight, ``acks=all``, idempotent producer) into a fresh Kafka topic of 6 partitions;

   (a) is timed from its first message received to the N-th, (b) from its first message received to the N-th
   acknowledged to the broker, which happens only after Kafka acknowledged the write. Afterwards the Kafka topic
   is read back: exactly N records (none missing, none twice) is asserted, not assumed;
4. reports the medians and the ratio bridge / paho.

    python -m benchmarks.bridge_throughput [--messages 100000] [--runs 3]

Writes ``benchmarks/results/bridge_throughput.md`` and ``.json``; progress goes to stderr.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import confluent_kafka
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.common import RESULTS, machine, write_result
from benchmarks.e2e_throughput import (
    PREFIX,
    demo_messages,
    drain_paho,
    fresh_session,
    mosquitto_version,
    publish_all,
    queue_drain_args,
)
from lifeline.kafka.bridge import Bridge, BridgeSettings
from lifeline.testing_broker import Broker, start_broker, stop_broker
from lifeline.testing_kafka import MockKafka, read_topic, start_kafka

PAHO_ID, BRIDGE_ID = "bench-paho", "bench-bridge"
PARTITIONS = 6


def say(text: str) -> None:
    print(f"[bridge] {text}", file=sys.stderr, flush=True)


def settings(broker: Broker, kafka: MockKafka, topic: str) -> BridgeSettings:
    return BridgeSettings(mqtt_host=broker.host, mqtt_port=broker.port, client_id=BRIDGE_ID, prefix=PREFIX,
                          kafka=kafka.bootstrap, topic=topic, status_interval_s=3600.0)


def bridge_session(broker: Broker, kafka: MockKafka) -> None:
    """Drop the bridge's session, then make an empty persistent one (MQTT 5) subscribed to the readings."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=BRIDGE_ID, protocol=mqtt.MQTTv5)
    c.connect(broker.host, broker.port, clean_start=True)  # session expiry 0: the old session ends with this one
    c.disconnect()
    b = Bridge(settings(broker, kafka, "warmup"))
    b.start()
    b.close()


def drain_bridge(broker: Broker, kafka: MockKafka, topic: str, n: int, timeout: float) -> float:
    """(b) The bridge drains its queued session into ``topic``; msg/s from the first message received to the
    n-th acknowledged to MQTT (after Kafka's acknowledgement)."""
    b = Bridge(settings(broker, kafka, topic))
    b.start()
    first = 0.0
    try:
        deadline = time.monotonic() + timeout
        while b.counts["acked"] < n:
            assert time.monotonic() < deadline, f"bridge: acked {b.counts['acked']} of {n} within {timeout:g} s"
            b.step()
            if not first and b.counts["received"]:
                first = time.perf_counter()
        last = time.perf_counter()
        end = time.monotonic() + 0.3
        while time.monotonic() < end:  # anything more would be a duplicate delivery
            b.step()
    finally:
        b.close()
    c = b.counts
    assert c["received"] == n and c["written"] == n, f"bridge: {dict(c)}, {n} were queued"
    assert not [k for k in c if k.startswith("dead.")], f"bridge dead-lettered valid input: {dict(c)}"
    return n / (last - first)


def main(argv: list[str] | None = None) -> int:
    args = queue_drain_args(__doc__, argv)
    n = args.messages
    msgs = demo_messages(n)
    sizes = sorted(len(p) for _, p in msgs)
    say(f"{n:,} messages (median payload {sizes[len(sizes) // 2]} B) from "
        f"{len({t for t, _ in msgs})} sensors")

    paho_rates: list[float] = []
    bridge_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lifeline-bridge-") as tmp:
        broker = start_broker(Path(tmp) / "mosquitto")
        kafka = start_kafka()
        say(f"{mosquitto_version()} on {broker.address}; mock Kafka (3 brokers) on {kafka.bootstrap}")
        try:
            for run in range(1, args.runs + 1):
                topic = f"readings-{run}"
                kafka.create_topic(topic, PARTITIONS)
                fresh_session(broker, PAHO_ID)
                bridge_session(broker, kafka)
                say(f"run {run}/{args.runs}: queueing {n:,} QoS 1 messages for both offline sessions ...")
                publish_all(broker, msgs)
                for who in ("paho", "bridge") if run % 2 else ("bridge", "paho"):
                    say(f"run {run}/{args.runs}: draining with {who} ...")
                    if who == "paho":
                        paho_rates.append(drain_paho(broker, n, args.timeout))
                        say(f"  paho: {paho_rates[-1]:,.0f} msg/s")
                    else:
                        bridge_rates.append(drain_bridge(broker, kafka, topic, n, args.timeout))
                        records = read_topic(kafka.bootstrap, topic, n, 120, idle_s=1.0)
                        assert len(records) == n, f"Kafka topic {topic}: {len(records)} records, {n} queued"
                        say(f"  bridge: {bridge_rates[-1]:,.0f} msg/s; {len(records):,} records in Kafka")
        finally:
            kafka.stop()
            stop_broker(broker.proc)

    paho_m, bridge_m = statistics.median(paho_rates), statistics.median(bridge_rates)
    result = {
        "machine": machine(), "broker": mosquitto_version(), "kafka": f"librdkafka {confluent_kafka.libversion()[0]} "
        "mock cluster, 3 brokers", "messages": n, "runs": args.runs, "partitions": PARTITIONS,
        "paho_msg_s": paho_rates, "bridge_msg_s": bridge_rates, "paho_median": paho_m, "bridge_median": bridge_m,
        "ratio": bridge_m / paho_m,
    }
    text = (
        "# Bridge throughput: MQTT → Kafka, acknowledged\n\n"
        f"- machine: {machine()}\n"
        f"- broker: {mosquitto_version()}, settings of `deploy/mosquitto.conf`, loopback\n"
        f"- Kafka: {result['kafka']} (`lifeline/testing_kafka.py`), loopback, a topic of {PARTITIONS} partitions "
        "per run\n"
        f"- input: the first {n:,} payloads of the demo city (scenario `demo`), one reading per message, QoS 1, "
        "queued for an offline persistent session\n"
        f"- command: `python -m benchmarks.bridge_throughput --messages {n} --runs {args.runs}`\n\n"
        "| what | msg/s (median) | per run |\n|---|---:|---|\n"
        f"| (a) bare paho subscriber (QoS 1, persistent session, counting `on_message`) | {paho_m:,.0f} "
        f"| {' / '.join(f'{r:,.0f}' for r in paho_rates)} |\n"
        f"| (b) `lifeline bridge` (receive, produce with `acks=all` + idempotence, PUBACK after Kafka's ack) "
        f"| {bridge_m:,.0f} | {' / '.join(f'{r:,.0f}' for r in bridge_rates)} |\n\n"
        f"Bridge / paho: **{result['ratio']:.2f}**. Every queued message was received by (a) and written to Kafka "
        f"exactly once by (b) (the topic read back: {n:,} records per run, asserted).\n"
    )
    print(text)
    say(f"written to {write_result('bridge_throughput', text)}")
    (RESULTS / "bridge_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
