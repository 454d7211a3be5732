"""The MQTT → Kafka bridge: every reading message, unchanged, to a Kafka topic keyed by its sensor id.

What it guarantees (``docs/kafka.md``, "The bridge"):

* **at-least-once**: a QoS 1 message is acknowledged to the MQTT broker only after Kafka acknowledged its
  write (``acks=all``, idempotent producer). A crash at any point means redelivery from the broker's
  persistent session, never a loss; what was written but not yet acknowledged is written again (the
  engine drops duplicate ``seq``);
* **per-sensor order**: the record key is the sensor id (the topic's last level), so one sensor's readings
  land on one partition, in the order the broker delivered them (the idempotent producer keeps order
  across retries). The MQTT topic travels in the ``mqtt_topic`` header (the worker recovers the domain);
* **bounded memory**: at most ``max_inflight`` messages are held between MQTT and Kafka. The client asks
  the broker for that window itself (MQTT 5 Receive Maximum), and stops reading its socket if it ever holds
  more; the broker keeps the rest. Kafka down means the window fills and the broker queues;
* **bad input never stops it**: a topic without a sensor id is written to the dead-letter topic (the
  codec's ``DeadLetter`` as JSON, reason ``bad_topic``) and logged once per topic.

Threads: everything (paho's network loop, ``produce``, the producer's delivery callbacks inside ``poll``,
the PUBACKs) runs in the one thread that calls ``run``; librdkafka's own threads never call back into
Python. So paho, which is not thread-safe, is only ever touched from that thread.

This module never decodes payloads: it moves bytes.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
import paho.mqtt.client as mqtt
from confluent_kafka import KafkaError, KafkaException, Producer
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lifeline.clock import Clock, SystemClock
from lifeline.codec import _Reject, split_topic
from lifeline.engine.shards import Sharding
from lifeline.errors import LifelineError
from lifeline.kafka.acks import AckWindow, Slot
from lifeline.kafka.records import REASON_HEADER, TICK_TOPIC, TOPIC_HEADER, tick_value
from lifeline.model import DeadLetter
from lifeline.sources.mqtt import DEFAULT_PREFIX, _BufferedClient, queue_pubacks

log = logging.getLogger(__name__)

_EXCERPT = 120
READ_PER_TURN = 1000  # messages handled per turn before Kafka's answers are served and PUBACKs sent
Headers = list[tuple[str, str | bytes | None]]


class _WindowedClient(_BufferedClient):
    """The buffered paho client, which stops handling packets once the bridge's window is full: one socket read
    may hold hundreds of messages, and a broker does not always keep to our Receive Maximum (measured: Mosquitto
    2.0.11 sent ~30,000 unacknowledged messages of a resumed session to a client that asked for 10,000)."""

    room: Callable[[], bool] = staticmethod(lambda: True)

    def _keep_reading(self) -> bool:
        return self.room()


class BridgeError(LifelineError):
    """The bridge cannot start (Kafka or MQTT unreachable, refused) or Kafka failed for good."""


@dataclass(frozen=True)
class BridgeSettings:
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    client_id: str = "lifeline-bridge"
    prefix: str = DEFAULT_PREFIX
    kafka: str = "127.0.0.1:9092"  # bootstrap.servers
    topic: str = "readings"
    deadletter_topic: str = "deadletter"
    max_inflight: int = 10_000  # 1..65535 (MQTT 5 Receive Maximum)
    session_expiry_s: int = 7 * 86400  # how long the broker keeps our session and queue while we are away
    keepalive_s: int = 60
    connect_timeout_s: float = 10.0
    drain_timeout_s: float = 30.0  # at shutdown: how long to wait for Kafka to confirm what is in flight
    status_interval_s: float = 5.0
    kafka_config: dict[str, str] = field(default_factory=dict)  # more librdkafka settings (SASL, ...)
    # sensor id -> shard key (lifeline/engine/shards.py): every sensor of a shard goes to one partition, so one
    # engine judges a neighbourhood group in arrival order; None: Kafka's key hash (one sensor, one partition)
    shards: Mapping[str, str] | None = None
    tick_s: float | None = None  # idle this long: a wall-clock tick to every partition (None: never)

    def problems(self) -> list[str]:
        out = []
        if not 1 <= self.max_inflight <= 65535:
            out.append(f"--max-inflight: must be 1..65535 (MQTT's Receive Maximum), got {self.max_inflight}")
        if not self.topic or not self.deadletter_topic:
            out.append("--topic and --deadletter-topic must not be empty")
        return out


def sensor_key(topic: str, prefix: str) -> bytes | DeadLetter:
    """The Kafka key of a message on ``topic``: its sensor id (``<prefix>/<domain>/<sensor_id>``), or the
    dead letter that says why it has none."""
    try:
        _, sensor = split_topic(topic, prefix)
    except _Reject as exc:
        return DeadLetter(exc.reason, exc.detail, topic)
    return sensor.encode()


def producer_config(s: BridgeSettings) -> dict[str, Any]:
    """librdkafka settings: durable (``acks=all``), idempotent (no duplicates from retries, order kept per
    partition), and patient: ``message.timeout.ms=0`` retries for as long as Kafka is away instead of failing
    the message (the window then fills up, and the broker holds the rest)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": s.kafka,
        "client.id": s.client_id,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 0,
        "linger.ms": 5,
        "queue.buffering.max.messages": max(100_000, 2 * s.max_inflight),
        "logger": logging.getLogger("lifeline.kafka.librdkafka"),
    }
    conf.update(s.kafka_config)
    return conf


class Bridge:
    """Subscribe to ``<prefix>/#`` (QoS 1, persistent MQTT 5 session) and produce every message to Kafka."""

    def __init__(self, settings: BridgeSettings, *, clock: Clock | None = None, status: TextIO | None = None) -> None:
        problems = settings.problems()
        if problems:
            raise BridgeError("; ".join(problems))
        self.s = settings
        self.clock = clock or SystemClock()
        self.status_out = status if status is not None else sys.stderr
        self.stop_event = threading.Event()
        self.window = AckWindow()
        self.counts: Counter[str] = Counter()
        self.kafka_error = ""  # the producer's last client-level error (all brokers down, ...), until a write
        self.fatal: str = ""
        self.connected = False
        self.subscribed = False
        self.mqtt_error = ""
        self._routes: dict[str, tuple[bytes, Headers, int] | DeadLetter] = {}
        self.partitions = 0  # of the readings topic (from Kafka at start)
        self.sharding: Sharding | None = None
        self._last_input = 0.0  # monotonic: the last MQTT message or tick (for --tick)
        self._status_at = 0.0
        self._status_counts: Counter[str] = Counter()
        self._reconnect_at = 0.0
        self._turn_left = READ_PER_TURN
        self._backoff = 1.0
        conf = producer_config(settings)
        conf["error_cb"] = self._on_kafka_error
        self.producer = Producer(conf)
        self.client = self._mqtt_client()

    def _mqtt_client(self) -> mqtt.Client:
        fast = all(hasattr(mqtt.Client, a) for a in ("_sock_recv", "loop_read", "_packet_queue"))
        c = (_WindowedClient if fast else mqtt.Client)(
            CallbackAPIVersion.VERSION2, client_id=self.s.client_id, protocol=mqtt.MQTTv5, manual_ack=True)
        if isinstance(c, _WindowedClient):
            c.room = lambda: self._turn_left > 0 and len(self.window) < self.s.max_inflight
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        return c

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.s.session_expiry_s
        props.ReceiveMaximum = self.s.max_inflight  # the broker sends at most this many unacknowledged
        return props

    # ---- start / stop ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Check that Kafka answers, then connect to MQTT and subscribe; BridgeError if either fails in time."""
        t = self.s.connect_timeout_s
        try:
            meta = self.producer.list_topics(self.s.topic, timeout=t)
        except KafkaException as exc:
            raise BridgeError(f"cannot reach Kafka at {self.s.kafka} within {t:g} s: {exc.args[0].str()}") from None
        err = meta.topics[self.s.topic].error if self.s.topic in meta.topics else None
        if err is not None:
            raise BridgeError(f"Kafka at {self.s.kafka}: topic {self.s.topic!r}: {err.str()}")
        self.partitions = len(meta.topics[self.s.topic].partitions)
        if self.s.shards is not None:
            self.sharding = Sharding(self.s.shards, self.partitions)
            sizes = self.sharding.sizes()
            log.info("sharding %d registered sensors over %d partitions (%d to %d each)", sum(sizes),
                     self.partitions, min(sizes), max(sizes))
        self._routes.clear()  # routes name partitions
        try:
            self.client.connect(self.s.mqtt_host, self.s.mqtt_port, self.s.keepalive_s, clean_start=False,
                                properties=self._connect_properties())
        except OSError as exc:
            raise BridgeError(f"cannot reach the MQTT broker {self.s.mqtt_host}:{self.s.mqtt_port}: {exc}") from None
        deadline = self.clock.monotonic() + t
        while not self.subscribed:
            if self.clock.monotonic() > deadline or self.fatal:
                why = f": {self.mqtt_error}" if self.mqtt_error else ""
                raise BridgeError(f"cannot subscribe on MQTT broker {self.s.mqtt_host}:{self.s.mqtt_port} "
                                  f"within {t:g} s{why}")
            if self.connected:  # a resumed session's messages may come before the SUBACK: forward them
                self.step()
            elif self.client.loop(0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS and self.mqtt_error:
                raise BridgeError(f"MQTT broker {self.s.mqtt_host}:{self.s.mqtt_port}: {self.mqtt_error}")

    def run(self, *, install_signals: bool = True) -> int:
        """Forward until SIGINT/SIGTERM (or ``stop_event``); then drain what is in flight and disconnect.
        0 on a clean stop, 1 when Kafka failed for good (nothing unwritten was acknowledged)."""
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self.stop_event.set())
        self.start()
        self._status_at = self._last_input = self.clock.monotonic()
        try:
            while not self.stop_event.is_set() and not self.fatal:
                self.step()
                self._maybe_tick()
                self._maybe_status()
        finally:
            self.close()
        if self.fatal:
            print(f"lifeline bridge: error: {self.fatal}", file=self.status_out, flush=True)
            return 1
        return 0

    def close(self) -> None:
        """Stop reading; wait up to ``drain_timeout_s`` for Kafka to confirm what is in flight and acknowledge
        it; disconnect (the session stays: what was not acknowledged comes again next time)."""
        deadline = self.clock.monotonic() + self.s.drain_timeout_s
        while len(self.window) and self.clock.monotonic() < deadline and not self.fatal:
            self.producer.poll(0.05)
            self._send_acks()
            self.client.loop_write()
            self.client.loop_misc()
        if len(self.window):
            log.warning("stopping with %d messages in flight: the broker delivers them again next time",
                        len(self.window))
        self._maybe_status(force=True)
        try:
            self.client.disconnect()
            self.client.loop_write()
        finally:
            self.producer.flush(max(0.0, deadline - self.clock.monotonic()))

    # ---- one turn -------------------------------------------------------------------------------------
    def step(self) -> None:
        """Read MQTT (unless the window is full), serve Kafka's answers, send the PUBACKs they allow."""
        self._turn_left = READ_PER_TURN
        if self.connected:
            if len(self.window) < self.s.max_inflight:
                c = self.client
                if isinstance(c, _WindowedClient) and c.has_buffered():
                    c.loop_read()  # packets read before the window filled: select() would not wake for them
                else:
                    c.loop(0.002 if len(self.window) else 0.05)
            else:
                self.counts["paused"] += 1  # turns spent not reading: the broker holds the messages
                self.client.loop_write()
                self.client.loop_misc()
                self.producer.poll(0.01)
        else:
            self._maybe_reconnect()
            self.producer.poll(0.05)
        self.producer.poll(0)
        self._send_acks()

    def _send_acks(self) -> None:
        mids = self.window.ready()
        if mids and self.connected:
            queue_pubacks(self.client, mids)
            self.counts["acked"] += len(mids)

    def _maybe_reconnect(self) -> None:
        now = self.clock.monotonic()
        if now < self._reconnect_at:
            return
        try:
            self.client.reconnect()
            self._backoff = 1.0
        except OSError as exc:
            self.mqtt_error = f"reconnect failed: {exc}"
            self._backoff = min(30.0, self._backoff * 2)
            log.warning("MQTT %s:%s: %s; next try in %g s", self.s.mqtt_host, self.s.mqtt_port, exc, self._backoff)
        self._reconnect_at = now + self._backoff

    # ---- paho callbacks (the run thread) --------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.mqtt_error = f"connection refused: {rc}"
            log.warning("MQTT %s:%s refused the connection: %s", self.s.mqtt_host, self.s.mqtt_port, rc)
            return
        self.window.new_connection()  # slots from an earlier connection are never acknowledged on this one
        self.connected = True
        self.counts["connects"] += 1
        log.info("MQTT connected to %s:%s (session present: %s)", self.s.mqtt_host, self.s.mqtt_port,
                 bool(getattr(flags, "session_present", False)))
        client.subscribe([(self.s.prefix.rstrip("/") + "/#", 1), (TICK_TOPIC, 1)])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        if any(rc.is_failure for rc in rcs):
            self.mqtt_error = f"subscription to {self.s.prefix}/# refused: {rcs}"
            log.error("MQTT %s", self.mqtt_error)
            return
        self.subscribed = True

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected = self.subscribed = False
        if rc.is_failure:
            self.mqtt_error = f"disconnected: {rc}"
            log.warning("MQTT disconnected from %s:%s (%s); reconnecting", self.s.mqtt_host, self.s.mqtt_port, rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        slot = self.window.add(msg.mid)
        self.counts["received"] += 1
        self._turn_left -= 1
        self._last_input = self.clock.monotonic()
        if topic == TICK_TOPIC:  # event time moves on: every partition hears it (acknowledged once all wrote it)
            self.counts["ticks"] += 1
            self._broadcast(bytes(msg.payload), functools.partial(self._on_delivery, slot, msg))
            return
        route = self._routes.get(topic)
        if route is None:
            route = self._route(topic)
        if isinstance(route, DeadLetter):
            self._dead_letter(slot, route, msg.payload)
            return
        key, headers, partition = route
        self._produce(self.s.topic, bytes(msg.payload), key, headers, functools.partial(self._on_delivery, slot, msg),
                      partition)

    def _broadcast(self, value: bytes, on_all: Any) -> None:
        """``value`` to every partition of the readings topic as a tick; ``on_all(err, None)`` once all wrote it
        (or with the first error)."""
        left = [self.partitions]
        headers: Headers = [(TOPIC_HEADER, TICK_TOPIC.encode())]

        def one(err: KafkaError | None, record: Any) -> None:
            if left[0] <= 0:
                return
            left[0] = 0 if err is not None else left[0] - 1
            if left[0] == 0:
                on_all(err, record)

        for p in range(self.partitions):
            self._produce(self.s.topic, value, None, headers, one, p)

    def _maybe_tick(self) -> None:
        """--tick: no input for that long, so event time moves to the wall clock on every partition (a tick
        is written to Kafka like any input: a replay of the topic sees it too)."""
        if self.s.tick_s is None or not self.partitions:
            return
        now = self.clock.monotonic()
        if now - self._last_input < self.s.tick_s:
            return
        self._last_input = now
        self.counts["idle_ticks"] += 1
        self._broadcast(tick_value(self.clock.now()), lambda err, record: None)

    def _route(self, topic: str) -> tuple[bytes, Headers, int] | DeadLetter:
        key = sensor_key(topic, self.s.prefix)
        route: tuple[bytes, Headers, int] | DeadLetter
        if isinstance(key, DeadLetter):
            route = key
            log.warning("dead letter (%s): %s; written to Kafka topic %r", key.reason, key.detail,
                        self.s.deadletter_topic)
        else:
            partition = self.sharding.partition(key.decode()) if self.sharding is not None else -1
            route = (key, [(TOPIC_HEADER, topic.encode())], partition)
        if len(self._routes) < 100_000:  # one entry per sensor topic; bounded against a flood of odd topics
            self._routes[topic] = route
        return route

    # ---- Kafka --------------------------------------------------------------------------------------
    def _produce(self, topic: str, value: bytes, key: bytes | None, headers: Headers,
                 on_delivery: Any, partition: int = -1) -> None:
        while True:
            try:
                if partition >= 0:
                    self.producer.produce(topic, value, key, partition, headers=headers, on_delivery=on_delivery)
                else:  # Kafka's partitioner on the key
                    self.producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:  # librdkafka's own queue is full (it is sized above the window): let it drain
                self.counts["producer_full"] += 1
                self.producer.poll(0.05)

    def _dead_letter(self, slot: Slot, dead: DeadLetter, payload: bytes | bytearray) -> None:
        d = DeadLetter(dead.reason, dead.detail, dead.topic, payload[:_EXCERPT].decode("utf-8", "replace"))
        self.counts[f"dead.{d.reason}"] += 1
        headers: Headers = [(TOPIC_HEADER, d.topic.encode()), (REASON_HEADER, d.reason.encode())]
        self._produce(self.s.deadletter_topic, orjson.dumps(d.to_dict()), None, headers,
                      functools.partial(self._on_dead_letter_delivery, slot))

    def _on_delivery(self, slot: Slot, msg: mqtt.MQTTMessage, err: KafkaError | None, record: Any) -> None:
        if err is None:
            self.window.written(slot)
            self.counts["written"] += 1
            self.kafka_error = ""
            return
        self.counts["kafka_errors"] += 1
        if err.fatal():
            self.fatal = f"Kafka at {self.s.kafka}: {err.str()}"
            self.window.failed(slot)
            return
        # Not retriable (retriable errors are retried by librdkafka for ever): e.g. a record too large.
        log.error("Kafka refused the message from %s (%d bytes): %s; dead-lettered", msg.topic, len(msg.payload),
                  err.str())
        self._dead_letter(slot, DeadLetter("kafka_rejected", f"Kafka topic {self.s.topic!r}: {err.str()}",
                                           msg.topic), msg.payload)

    def _on_dead_letter_delivery(self, slot: Slot, err: KafkaError | None, record: Any) -> None:
        if err is None:
            self.window.written(slot)
            self.counts["dead_letters_written"] += 1
            return
        log.error("cannot write a dead letter to Kafka topic %r: %s; the message stays with the MQTT broker",
                  self.s.deadletter_topic, err.str())
        if err.fatal():
            self.fatal = f"Kafka at {self.s.kafka}: {err.str()}"
        self.window.failed(slot)

    def _on_kafka_error(self, err: KafkaError) -> None:
        self.kafka_error = err.str()
        if err.fatal():
            self.fatal = f"Kafka at {self.s.kafka}: {err.str()}"
        log.warning("Kafka %s: %s", self.s.kafka, err.str())

    # ---- progress -------------------------------------------------------------------------------------
    def _maybe_status(self, force: bool = False) -> None:
        now = self.clock.monotonic()
        dt = now - self._status_at
        if not force and dt < self.s.status_interval_s:
            return
        c, prev = self.counts, self._status_counts

        def rate(k: str) -> str:
            return f"{(c[k] - prev[k]) / dt:,.0f}/s" if dt > 0 else "-"

        dead = ", ".join(f"{k[5:]} {v}" for k, v in sorted(c.items()) if k.startswith("dead.")) or "none"
        mqtt_state = "connected" if self.connected else f"DISCONNECTED ({self.mqtt_error})"
        kafka_state = f"WAITING ({self.kafka_error})" if self.kafka_error else "ok"
        print(f"lifeline bridge: {c['received']:,} received ({rate('received')}), {c['written']:,} written to "
              f"Kafka ({rate('written')}), {c['acked']:,} acked; in flight {len(self.window):,}/"
              f"{self.s.max_inflight:,}; dead letters: {dead}; mqtt {mqtt_state}, kafka {kafka_state}",
              file=self.status_out, flush=True)
        self._status_at = now
        self._status_counts = Counter(c)
