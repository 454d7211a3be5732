"""``lifeline bridge`` over real sockets: a real Mosquitto (the shipped settings) in, librdkafka's mock cluster
(a real Kafka-protocol broker, ``lifeline.testing_kafka``) out; the bridge is the CLI in its own process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeline.testing_broker import Broker, free_port
from lifeline.testing_kafka import MockKafka, Record, read_topic
from tests.integration.helpers import REPO, Publisher, wait_for

pytestmark = pytest.mark.integration

STATUS = re.compile(r"lifeline bridge: ([\d,]+) received .*?([\d,]+) written to Kafka .*?([\d,]+) acked; "
                    r"in flight ([\d,]+)/")


class BridgeProc:
    """``python -m lifeline.cli bridge ...`` in its own process, its stderr in a file."""

    started: list[BridgeProc] = []  # noqa: RUF012  (ended by the autouse fixture below, even when a test fails)

    def __init__(self, tmp: Path, broker: Broker, kafka: str, prefix: str, *args: str) -> None:
        self.log = tmp / f"bridge-{time.monotonic_ns()}.log"
        BridgeProc.started.append(self)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lifeline.cli", "--log-level", "INFO", "bridge", "--broker", broker.address,
                 "--kafka", kafka, "--prefix", prefix, "--status-every", "0.2s", *args],
                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out, stderr=subprocess.STDOUT)
        # The first status line comes once subscribed: from then on the broker keeps what is published for us.
        wait_for(lambda: bool(self.statuses()) or self.proc.poll() is not None, 20, "the bridge's first status")
        assert self.proc.poll() is None, self.text()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def statuses(self) -> list[tuple[int, int, int, int]]:
        """(received, written, acked, in flight) of every status line so far."""
        return [tuple(int(g.replace(",", "")) for g in m.groups()) for m in STATUS.finditer(self.text())]  # type: ignore[misc]

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=40)


@pytest.fixture(autouse=True)
def _end_bridges() -> Iterator[None]:
    yield
    while BridgeProc.started:
        b = BridgeProc.started.pop()
        if b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait(10)


def publish(pub: Publisher, msgs: list[tuple[str, bytes]], chunk: int = 5000) -> None:
    """Publish QoS 1 and wait for the broker's PUBACKs every ``chunk`` (paho refuses past 65,535 in flight)."""
    for i in range(0, len(msgs), chunk):
        for topic, payload in msgs[i:i + chunk]:
            pub.publish(topic, payload)
        pub.wait_acked(60)


def sensor_stream(prefix: str, sensors: int, per_sensor: int, pad: int = 0) -> list[tuple[str, bytes]]:
    """Interleaved messages of many sensors; each payload carries its sensor's seq (and arbitrary bytes)."""
    out = []
    for seq in range(per_sensor):
        for s in range(sensors):
            domain = ("gas", "water", "bridge")[s % 3]
            payload = b'{"ts": %d, "seq": %d, "metric": "v", "value": 1.5}' % (1_764_403_200 + seq, seq)
            out.append((f"{prefix}/{domain}/S-{s:03d}", payload + b" \xff\x00" + b"x" * pad))
    return out


def seq_of(r: Record) -> int:
    m = re.search(rb'"seq": (\d+)', r.value)
    assert m, r.value
    return int(m.group(1))


def test_bridge_forwards_every_message_keyed_by_sensor_in_order(mosquitto: Broker, kafka: MockKafka,
                                                                 tmp_path: Path) -> None:
    """N messages from many sensors in -> exactly N records: key = sensor id, payload bytes unchanged, header =
    MQTT topic, each sensor on one partition in publish order; SIGTERM then exits 0 with everything acked."""
    prefix = "t-forward/readings"
    kafka.create_topic("readings", 6)
    bridge = BridgeProc(tmp_path, mosquitto, kafka.bootstrap, prefix, "--client-id", "bridge-forward")
    msgs = sensor_stream(prefix, sensors=60, per_sensor=50)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        publish(pub, msgs)
    finally:
        pub.close()
    records = read_topic(kafka.bootstrap, "readings", len(msgs), 60)
    assert bridge.stop() == 0, bridge.text()[-2000:]

    assert len(records) == len(msgs)
    topic_of = {t.rsplit("/", 1)[1].encode(): t.encode() for t, _ in msgs}
    assert Counter((r.key, r.value) for r in records) == Counter((t.rsplit("/", 1)[1].encode(), p) for t, p in msgs)
    assert all(r.headers == (("mqtt_topic", topic_of[r.key or b""]),) for r in records)
    partitions: dict[bytes | None, set[int]] = defaultdict(set)
    seqs: dict[bytes | None, list[int]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        partitions[r.key].add(r.partition)
        seqs[r.key].append(seq_of(r))
    assert all(len(p) == 1 for p in partitions.values())
    assert all(s == list(range(50)) for s in seqs.values())
    assert len({p for ps in partitions.values() for p in ps}) > 1  # keys spread over the partitions
    received, written, acked, inflight = bridge.statuses()[-1]
    assert (received, written, acked, inflight) == (len(msgs), len(msgs), len(msgs), 0)


def test_bridge_sigkilled_mid_stream_and_restarted_loses_nothing(mosquitto: Broker, kafka: MockKafka,
                                                                  tmp_path: Path) -> None:
    """SIGKILL while messages stream in, restart with the same client id: every (sensor, seq) reaches Kafka at
    least once, per-sensor order holds after the duplicates are dropped, and the duplicates are at most what was
    in flight at the kill (written to Kafka, not yet acknowledged to MQTT: the broker sends them again)."""
    prefix = "t-kill/readings"
    inflight = 2000
    args = ("--client-id", "bridge-kill", "--max-inflight", str(inflight))
    bridge = BridgeProc(tmp_path, mosquitto, kafka.bootstrap, prefix, *args)
    msgs = sensor_stream(prefix, sensors=100, per_sensor=200)
    pub = Publisher(mosquitto.host, mosquitto.port)
    publisher = threading.Thread(target=publish, args=(pub, msgs, 2000))
    publisher.start()
    try:
        wait_for(lambda: any(s[1] >= 4000 for s in bridge.statuses()), 60, "4,000 records written before the kill")
        assert bridge.stop(signal.SIGKILL) == -signal.SIGKILL
        killed_at = bridge.statuses()[-1]
        bridge = BridgeProc(tmp_path, mosquitto, kafka.bootstrap, prefix, *args)
    finally:
        publisher.join(120)
        pub.close()
    records = read_topic(kafka.bootstrap, "readings", len(msgs), 90, idle_s=2.0)
    assert bridge.stop() == 0

    got = Counter((r.key, seq_of(r)) for r in records)
    want = {(t.rsplit("/", 1)[1].encode(), seq) for seq in range(200) for t in {t for t, _ in msgs[:100]}}
    assert set(got) == want, f"missing: {sorted(want - set(got))[:10]}"
    duplicates = len(records) - len(want)
    print(f"\nSIGKILL at {killed_at[1]:,} written / {killed_at[2]:,} acked: {len(records):,} records for "
          f"{len(want):,} messages, {duplicates:,} duplicates (the window allows {inflight:,})")
    assert duplicates <= inflight
    firsts: dict[bytes | None, list[int]] = defaultdict(list)
    seen: set[tuple[bytes | None, int]] = set()
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        if (r.key, seq_of(r)) not in seen:
            seen.add((r.key, seq_of(r)))
            firsts[r.key].append(seq_of(r))
    assert all(s == list(range(200)) for s in firsts.values())


def test_bridge_holds_a_bounded_window_while_kafka_is_down(mosquitto: Broker, kafka: MockKafka,
                                                           tmp_path: Path) -> None:
    """Kafka's brokers down while 40 MB of messages are published: the bridge holds at most --max-inflight of
    them and its RSS stays flat (the broker queues the rest); once Kafka is back, every message arrives once."""
    prefix = "t-down/readings"
    window = 100
    bridge = BridgeProc(tmp_path, mosquitto, kafka.bootstrap, prefix, "--client-id", "bridge-down",
                        "--max-inflight", str(window))
    time.sleep(1.0)
    rss0 = bridge.rss_kib()
    kafka.brokers_down()
    msgs = sensor_stream(prefix, sensors=50, per_sensor=400, pad=2000)  # 20,000 x ~2 KB
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        publish(pub, msgs)
    finally:
        pub.close()
    time.sleep(2.0)  # the bridge sees everything it will see while Kafka is away
    rss_down = bridge.rss_kib()
    down = bridge.statuses()
    received_down = down[-1][0]
    assert "kafka WAITING" in bridge.text() or down[-1][1] == 0
    kafka.brokers_up()
    records = read_topic(kafka.bootstrap, "readings", len(msgs), 120, idle_s=2.0)
    assert bridge.stop() == 0

    print(f"\nKafka down: bridge received {received_down:,} of {len(msgs):,} ({len(msgs) * 2 // 1024:,} MiB), "
          f"in flight at most {max(s[3] for s in down)}, RSS {rss0 / 1024:.1f} -> {rss_down / 1024:.1f} MiB")
    assert max(s[3] for s in bridge.statuses()) <= window
    assert received_down <= window
    assert rss_down - rss0 < 10 * 1024  # 40 MB published; the bridge holds at most ~200 KB of it
    assert len(records) == len(msgs)
    assert Counter((r.key, r.value) for r in records) == Counter((t.rsplit("/", 1)[1].encode(), p) for t, p in msgs)


def test_bridge_dead_letters_a_topic_without_sensor_and_keeps_running(mosquitto: Broker, kafka: MockKafka,
                                                                       tmp_path: Path) -> None:
    """A topic without a sensor id becomes a ``bad_topic`` record on the dead-letter topic and a log line naming
    it; the messages around it are forwarded."""
    prefix = "t-bad/readings"
    bridge = BridgeProc(tmp_path, mosquitto, kafka.bootstrap, prefix, "--client-id", "bridge-bad")
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        publish(pub, [(f"{prefix}/gas/S-1", b"before"), (f"{prefix}/gas", b"no sensor"),
                      (f"{prefix}/gas/S-1/extra", b"too deep"), (f"{prefix}/gas/S-1", b"after")])
    finally:
        pub.close()
    readings = read_topic(kafka.bootstrap, "readings", 2, 30)
    dead = read_topic(kafka.bootstrap, "deadletter", 2, 30)
    assert bridge.proc.poll() is None
    assert bridge.stop() == 0
    assert [r.value for r in readings] == [b"before", b"after"]
    assert sorted(dict(r.headers)["mqtt_topic"] for r in dead) == [f"{prefix}/gas".encode(),
                                                                  f"{prefix}/gas/S-1/extra".encode()]
    assert all(dict(r.headers)["reason"] == b"bad_topic" and b'"reason":"bad_topic"' in r.value for r in dead)
    assert f"dead letter (bad_topic): topic '{prefix}/gas'" in bridge.text()
    assert "dead letters: bad_topic 2" in bridge.text()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lifeline.cli", "bridge", "--connect-timeout", "3s", *args],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=60)


def test_bridge_exits_1_naming_kafka_when_kafka_is_unreachable(mosquitto: Broker) -> None:
    """No Kafka at the address: exit 1 with one line that names the address, before touching MQTT."""
    port = free_port()
    r = run_cli("--broker", mosquitto.address, "--kafka", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert f"lifeline: error: cannot reach Kafka at 127.0.0.1:{port} within 3 s" in r.stderr


def test_bridge_exits_1_naming_the_broker_when_mqtt_is_unreachable(kafka: MockKafka) -> None:
    """No MQTT broker at the address: exit 1 with one line that names it."""
    port = free_port()
    r = run_cli("--broker", f"127.0.0.1:{port}", "--kafka", kafka.bootstrap)
    assert r.returncode == 1
    assert f"lifeline: error: cannot reach the MQTT broker 127.0.0.1:{port}" in r.stderr
