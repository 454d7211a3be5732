"""Live readings from an MQTT broker: QoS 1, a persistent session, manual acknowledgements.

Why each choice: a persistent session (MQTT 3.1.1, ``clean_session=False``, a fixed client id)
makes the broker queue readings while lifeline is down; manual acks let the runner acknowledge a
message only after the alerts it produced are committed, so a crash means redelivery, never loss.
paho's network loop is the throughput bottleneck (~17-20 k msg/s here), so ``on_message`` only
appends to a deque; decoding happens in the runner's thread, in batches.

Two things keep paho's thread and the runner's thread from fighting over the GIL (measured by
``benchmarks/e2e_throughput.py``):

- reads are buffered (``_BufferedClient``): stock paho makes three ``recv`` syscalls per message
  (type byte, length byte, body), and each one releases the GIL; while the runner computes, paho then
  waits up to a switch interval (5 ms) to get it back, for one message. Here one ``recv`` of up to
  64 KiB feeds every complete packet in it;
- a batch's PUBACKs go out as one write (``ack``) instead of one queued packet, one wake-up byte and one
  lock round per message.

This module never decodes payloads and never touches the store.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from lifeline.clock import Clock, SystemClock
from lifeline.errors import LifelineError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "lifeline/readings"
ALERTS_PREFIX = "lifeline/alerts"
DEADLETTER_TOPIC = "lifeline/deadletter"


class Message(NamedTuple):
    topic: str
    payload: bytes
    mid: int
    qos: int
    received: float  # epoch seconds from the injected clock


_PUBACK = struct.Struct("!BBH")
_READ_CHUNK = 65536


class _BufferedClient(mqtt.Client):
    """paho's client with buffered socket reads (see the module doc). Relies on paho 2.x internals
    (``_sock_recv``, ``loop_read``), checked by ``MqttSource`` at construction."""

    _rbuf: bytes = b""
    _rpos: int = 0
    _rsock: object = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing buffered belongs to it
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            data = super()._sock_recv(max(bufsize, _READ_CHUNK))
            if len(data) <= bufsize:
                self._rbuf, self._rpos = b"", 0
                return data
            self._rbuf, self._rpos = buf, pos = data, 0
        end = pos + bufsize
        self._rpos = end
        return buf[pos:end]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        # Handle every packet already buffered: select() cannot see them, and would otherwise wait
        # (up to a second) for new bytes on the socket before they are handled.
        while True:
            rc = super().loop_read(max_packets)
            if rc or not self.has_buffered() or not self._keep_reading():
                return rc

    def has_buffered(self) -> bool:
        """Bytes of this connection read from the socket and not handled yet (select() cannot see them)."""
        return self._rpos < len(self._rbuf) and self._rsock is self._sock

    def _keep_reading(self) -> bool:
        """Whether to go on handling buffered packets now (a subclass with a bounded window says no when full)."""
        return True


def queue_pubacks(client: mqtt.Client, mids: list[int]) -> None:
    """QoS 1 PUBACKs for ``mids``, in this order, as one packet write (paho 2.x's ``_packet_queue``; paho's
    ``ack`` queues one packet, one wake-up byte and one lock round per message). Also valid for MQTT 5: a
    PUBACK of remaining length 2 means reason "success" without properties."""
    if not mids:
        return
    if not hasattr(client, "_packet_queue"):
        for mid in mids:
            client.ack(mid, 1)
        return
    pack = _PUBACK.pack
    client._packet_queue(mqtt.PUBACK, b"".join([pack(mqtt.PUBACK, 2, mid) for mid in mids]), 0, 0)


class MqttError(LifelineError):
    """The broker cannot be reached or refused us; the message names host, port and reason."""


def not_subscribed(s: MqttSettings, wait_s: float, last_error: str) -> MqttError:
    """The error of a source that could not subscribe in time (both sources raise the same)."""
    why = f": {last_error}" if last_error else ""
    return MqttError(f"cannot subscribe on MQTT broker {s.host}:{s.port} within {wait_s:g} s{why}")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "lifeline-engine"
    prefix: str = DEFAULT_PREFIX
    qos: int = 1
    keepalive: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    clean_session: bool = False
    username: str | None = None
    password: str | None = None
    max_inflight_out: int = 1000  # our own QoS 1 publishes (alerts, dead letters) awaiting PUBACK


class MqttSource:
    """Subscribe to ``<prefix>/#`` and hand out batches of received messages. (``#`` rather than
    ``+/+``: a sensor publishing to a malformed topic is dead-lettered as ``bad_topic``, not ignored.)

    ``get_batch`` is called from one consumer thread; paho's loop runs in its own thread.
    """

    def __init__(self, settings: MqttSettings = MqttSettings(), *, clock: Clock | None = None) -> None:
        self.settings = settings
        self._clock = clock or SystemClock()
        self._q: deque[Message] = deque()
        self._ready = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.connects = 0
        self.last_error = ""
        self.publish_failures = 0
        # paho internals we lean on (2.x); without them, stock paho and one PUBACK per message.
        self._fast = all(hasattr(mqtt.Client, a) for a in ("_sock_recv", "loop_read", "_packet_queue"))
        c = (_BufferedClient if self._fast else mqtt.Client)(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=settings.clean_session,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if settings.username is not None:
            c.username_pw_set(settings.username, settings.password)
        c.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        c.max_inflight_messages_set(settings.max_inflight_out)
        c.max_queued_messages_set(0)  # 0 = unlimited: never drop our own alerts while reconnecting
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._make_on_message()
        self._client = c

    @property
    def topic_filter(self) -> str:
        return self.settings.prefix.rstrip("/") + "/#"

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, wait_s: float | None = 10.0) -> None:
        """Connect in the background (retrying with backoff); with ``wait_s``, wait until subscribed
        and raise MqttError if that takes longer."""
        s = self.settings
        self._client.connect_async(s.host, s.port, s.keepalive)
        self._client.loop_start()
        if wait_s is not None and not self.wait_subscribed(wait_s):
            self.stop()
            raise not_subscribed(s, wait_s, self.last_error)

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self) -> None:
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._connected.clear()

    # ---- paho callbacks (paho's thread) ------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.last_error = f"connection refused: {rc}"
            log.warning("MQTT %s:%s refused the connection: %s", self.settings.host, self.settings.port, rc)
            return
        self.connects += 1
        self._connected.set()
        present = bool(getattr(flags, "session_present", False))
        log.info("MQTT connected to %s:%s (session present: %s)", self.settings.host, self.settings.port, present)
        client.subscribe(self.topic_filter, qos=self.settings.qos)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        if any(rc.is_failure for rc in rcs):
            self.last_error = f"subscription to {self.topic_filter} refused: {rcs}"
            log.error("MQTT %s", self.last_error)
            return
        log.info("MQTT subscribed to %s (QoS %d)", self.topic_filter, self.settings.qos)
        self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if rc.is_failure:
            self.last_error = f"disconnected: {rc}"
            log.warning("MQTT disconnected from %s:%s (%s); reconnecting with backoff",
                        self.settings.host, self.settings.port, rc)

    def _make_on_message(self) -> Any:
        # Bound locals: this runs once per message on paho's thread, the pipeline's bottleneck.
        append = self._q.append
        now = self._clock.now
        ready = self._ready

        def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            append(Message(msg.topic, msg.payload, msg.mid, msg.qos, now()))  # type: ignore[arg-type]  # bytes in practice
            if not ready.is_set():
                ready.set()

        return on_message

    # ---- consumer side ----------------------------------------------------------------------
    def pending(self) -> int:
        return len(self._q)

    def get_batch(self, max_n: int, wait_s: float, linger_s: float = 0.0) -> list[Message]:
        """Up to ``max_n`` messages: wait up to ``wait_s`` for the first, then up to ``linger_s``
        more for the batch to fill. An empty list means nothing arrived."""
        q = self._q
        if not q:
            self._ready.clear()
            if not q and not self._ready.wait(wait_s):
                return []
        if linger_s > 0 and len(q) < max_n:
            deadline = time.monotonic() + linger_s
            while len(q) < max_n and time.monotonic() < deadline:
                time.sleep(min(0.002, linger_s))
        popleft = q.popleft
        return [popleft() for _ in range(min(max_n, len(q)))]

    def ack(self, messages: list[Message]) -> None:
        """Acknowledge, in receive order (MQTT requires PUBACKs in order): QoS 1 PUBACKs of the batch
        as one write (paho's ``ack`` queues one packet and one wake-up per message)."""
        if self._fast and all(m.qos == 1 for m in messages):
            queue_pubacks(self._client, [m.mid for m in messages])
            return
        ack = self._client.ack
        for m in messages:
            if m.qos > 0:
                ack(m.mid, m.qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Publish (QoS 1 by default); False, counted and logged, when paho refuses it."""
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN: queued by paho and sent on reconnect. Anything else (e.g. MQTT_ERR_QUEUE_SIZE,
            # paho's 65,535 in-flight limit) is a real refusal.
            self.publish_failures += 1
            log.warning("MQTT publish to %s refused by paho: %s", topic, mqtt.error_string(info.rc))
            return False
        return True
