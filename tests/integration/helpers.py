"""Shared pieces of the integration tests: one small city, a runner in a thread or a subprocess,
an MQTT collector. Real sockets, a real broker; nothing here is a mock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lifeline.engine.runner import RunConfig, Runner
from lifeline.registry import Registry
from lifeline.rules.model import RuleSet
from lifeline.testing import registry_of, sensors, threshold_rule

REPO = Path(__file__).resolve().parents[2]
T0 = 1_764_403_200.0


def city() -> tuple[RuleSet, Registry]:
    """20 gas sensors, 5 water sensors; a methane threshold rule (blue 5 / yellow 10 / orange 20 / red 50)."""
    rules = RuleSet((threshold_rule(), threshold_rule("water.pressure.low", "pressure_mpa",
                                                      {"yellow": 0.2, "red": 0.1}, direction="below")))
    return rules, registry_of(sensors("gas", 20), sensors("water", 5))


def wait_for(cond: Callable[[], bool], timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    if os.environ.get("DUMP_THREADS"):
        import faulthandler

        faulthandler.dump_traceback(all_threads=True)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def config(port: int, tmp: Path, **kw: Any) -> RunConfig:
    base: dict[str, Any] = dict(broker_port=port, db_path=str(tmp / "lifeline.db"),
                                journal_path=str(tmp / "journal.jsonl"), alerts_out=str(tmp / "alerts.jsonl"),
                                connect_timeout_s=10.0, status_interval_s=3600.0)
    base.update(kw)
    return RunConfig(**base)


@dataclass
class ThreadRunner:
    """A Runner in a background thread of the test process (same code path as ``lifeline run``)."""

    runner: Runner
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.runner.start()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        r = self.runner
        while not r.stop_event.is_set():
            r.step()

    def stop(self) -> None:
        self.runner.stop_event.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "runner thread did not stop within 10 s"
        self.runner.close()


def start_thread_runner(cfg: RunConfig) -> ThreadRunner:
    rules, reg = city()
    return ThreadRunner(Runner(cfg, rules, reg))


def spawn_runner(port: int, tmp: Path, client_id: str, *args: str,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``python -m tests.integration.runner_entry``: the same Runner in its own process (to SIGKILL it);
    ``args``: more of runner_entry's options, ``env``: more environment (a routing file's secrets)."""
    log = (tmp / "runner.log").open("ab")
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.runner_entry", "--port", str(port), "--dir", str(tmp),
         "--client-id", client_id, *args], cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)


class Collector:
    """Subscribes (QoS 1) and keeps every message: topic -> list of decoded JSON payloads."""

    def __init__(self, host: str, port: int, topics: list[str]) -> None:
        self.messages: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{os.getpid()}-{id(self)}")
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_connect = lambda cl, *a: cl.subscribe([(t, 1) for t in topics])
        c.connect(host, port)
        c.loop_start()
        self.client = c
        assert self._subscribed.wait(10), "collector did not subscribe within 10 s"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            body = {"undecodable": msg.payload[:200].decode("utf-8", "replace")}
        with self._lock:
            self.messages.append((msg.topic, body))

    def on(self, prefix: str) -> list[tuple[str, Any]]:
        with self._lock:
            return [(t, p) for t, p in self.messages if t.startswith(prefix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Publisher:
    """A paho QoS 1 publisher that counts broker acknowledgements (PUBACKs)."""

    def __init__(self, host: str, port: int, client_id: str = "") -> None:
        self.acked = 0
        self._lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{os.getpid()}-{id(self)}")
        c.max_inflight_messages_set(1000)
        c.on_publish = self._on_publish
        c.connect(host, port)
        c.loop_start()
        self.client = c
        self.sent = 0

    def _on_publish(self, *a: Any) -> None:
        with self._lock:
            self.acked += 1

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"paho refused publish: {mqtt.error_string(info.rc)}"
        self.sent += 1

    def wait_acked(self, timeout: float = 30.0) -> None:
        wait_for(lambda: self.acked >= self.sent, timeout, f"PUBACKs for {self.sent} messages (got {self.acked})")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def gas(sensor: int, ts: float, value: float, seq: int | None = None) -> tuple[str, bytes]:
    obj: dict[str, Any] = {"ts": ts, "metric": "ch4_lel", "value": value}
    if seq is not None:
        obj["seq"] = seq
    return f"lifeline/readings/gas/gas-{sensor:04d}", orjson.dumps(obj)


#: one gas sensor's %LEL readings that walk one alert through all its transitions (gas.methane.high) ...
WALK = [1, 6, 12, 55, 25, 3]
#: ... which are these (event, level)
WALK_EVENTS = [("fired", "blue"), ("escalated", "yellow"), ("escalated", "red"), ("deescalated", "orange"),
               ("resolved", "orange")]


def publish_walk(pub: Publisher, sensor: int = 1) -> float:
    """Publish ``WALK`` as QoS 1 readings of gas-<sensor>, one second apart from ten minutes ago, seq 0..5, and
    wait for the broker's acks. Returns the first reading's time."""
    t0 = float(int(time.time()) - 600)
    for i, v in enumerate(WALK):
        pub.publish(*gas(sensor, t0 + i, v, seq=i))
    pub.wait_acked()
    return t0
