"""The MQTT source in a child process, against a real Mosquitto: order, acks, publishing, and no orphan.

The runner uses ``ProcessMqttSource`` by default (its receive loop on the other core); the runner tests
(bad input, SIGKILL mid-stream, alerts) run through it. These tests pin what the runner relies on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lifeline.sources.mqtt import MqttSettings
from lifeline.sources.mqtt_process import ProcessMqttSource
from lifeline.testing_broker import Broker


def _publish(broker: Broker, msgs: list[tuple[str, bytes]]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-proc-pub", protocol=mqtt.MQTTv311)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        for topic, payload in msgs:
            c.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


def _drain(src: ProcessMqttSource, n: int, timeout: float = 20.0) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        batch = src.get_batch(100, 0.5)
        got.extend((m.topic, m.payload) for m in batch)
        src.ack(batch)
    return got


def test_process_source_delivers_in_order_acks_and_publishes(mosquitto: Broker) -> None:
    settings = MqttSettings(host=mosquitto.host, port=mosquitto.port, client_id="test-proc-src")
    msgs = [(f"lifeline/readings/gas/W{i % 3}", b'{"ts": %d, "metrics": {"ch4_lel": 1}}' % i) for i in range(500)]
    heard: list[bytes] = []
    done = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-proc-sub", protocol=mqtt.MQTTv311)
    sub.on_connect = lambda c, *a: c.subscribe("lifeline/alerts/#", qos=1)
    sub.on_subscribe = lambda *a: done.set()
    sub.on_message = lambda c, u, m: heard.append(bytes(m.payload))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    src = ProcessMqttSource(settings)
    try:
        assert done.wait(10)
        src.start(wait_s=15)
        assert src.connected
        _publish(mosquitto, msgs)
        assert _drain(src, len(msgs)) == msgs  # every message, once, in the broker's order
        assert src.publish("lifeline/alerts/gas/W1", b"alert-1")
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard == [b"alert-1"]
    finally:
        src.stop()
        sub.disconnect()
        sub.loop_stop()
    assert (src.pending(), src.connected) == (0, False)
    # acknowledged means gone: a new session with the same id gets nothing redelivered
    src2 = ProcessMqttSource(settings)
    try:
        src2.start(wait_s=15)
        assert src2.get_batch(100, 1.0) == []
    finally:
        src2.stop()


def test_process_source_child_exits_when_its_parent_is_killed(mosquitto: Broker, tmp_path: Path) -> None:
    """SIGKILL of the parent closes its pipe ends; the child sees end-of-file and exits (no orphan
    holding the MQTT session)."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from lifeline.sources.mqtt import MqttSettings
        from lifeline.sources.mqtt_process import ProcessMqttSource
        if __name__ == "__main__":
            src = ProcessMqttSource(MqttSettings(host={mosquitto.host!r}, port={mosquitto.port},
                                                 client_id="test-proc-orphan"))
            src.start(wait_s=15)
            print(src._proc.pid, flush=True)
            time.sleep(60)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # alive
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child), f"child {child} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_process_source_replaces_a_child_that_died(mosquitto: Broker) -> None:
    """A child killed under the runner is replaced; what was published meanwhile is not lost (the broker
    keeps it for the persistent session) and what was unacknowledged comes again."""
    settings = MqttSettings(host=mosquitto.host, port=mosquitto.port, client_id="test-proc-respawn")
    src = ProcessMqttSource(settings)
    try:
        src.start(wait_s=15)
        first = [("lifeline/readings/gas/W1", b"before-%d" % i) for i in range(20)]
        _publish(mosquitto, first)
        assert _drain(src, len(first)) == first
        os.kill(src._proc.pid, signal.SIGKILL)
        time.sleep(0.5)
        after = [("lifeline/readings/gas/W1", b"after-%d" % i) for i in range(20)]
        _publish(mosquitto, after)
        got = _drain(src, len(after), timeout=30)
        while got[-1] != after[-1]:  # redelivered messages came first: read on to the end
            more = _drain(src, 1, timeout=10)
            assert more, f"after a new child: {got}"
            got += more
        # acknowledgements still in flight when the child died come again (redelivery, never loss)
        redelivered = [m for m in got if m not in after]
        assert set(redelivered) <= set(first)
        assert [m for m in got if m in after] == after
        assert src.spawns == 2
    finally:
        src.stop()


def test_both_sources_say_why_they_could_not_subscribe() -> None:
    """No broker on the port: start(wait_s) raises MqttError naming host, port and the wait, and the
    child process is gone afterwards."""
    import socket

    import pytest

    from lifeline.sources.mqtt import MqttError, MqttSource

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = MqttSettings(host="127.0.0.1", port=port, client_id="test-proc-nobroker", reconnect_min_s=1)
    proc_src = ProcessMqttSource(settings)
    for src in (proc_src, MqttSource(settings)):
        with pytest.raises(MqttError, match=rf"^cannot subscribe on MQTT broker 127\.0\.0\.1:{port} within 1 s"):
            src.start(wait_s=1.0)
        assert (src.pending(), src.connected) == (0, False)
    assert proc_src._proc is None  # stopped and joined, not left running
