"""The real Mosquitto runs the broker configs of deploy/ (docker-compose.yml's and the production one), with ports
and paths rewritten to a temp dir and free loopback ports, and the production ACLs do what they say: over TLS
with certificates from deploy/certs/make-dev-certs.sh, a gas sensor may publish its readings and nothing else,
the bridge reads readings, lifeline publishes alerts. Fails, never skips, without mosquitto or openssl.
"""

from __future__ import annotations

import contextlib
import getpass
import queue
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from lifeline.testing_broker import find_mosquitto, free_port, stop_broker
from tests.deployfiles import MOSQUITTO_COMPOSE, MOSQUITTO_PROD, conf_lines, dev_certs, rewrite_conf

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87
ACCEPTED = (0x00, 0x10)  # success; success with "no matching subscribers"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Running:
    ports: dict[str, int]  # the config's listener port -> the port it listens on here
    certs: Path
    log: Path


@contextlib.contextmanager
def _start(conf: Path, tmp: Path, certs: Path | None) -> Iterator[Running]:
    ports = {value.split()[0]: free_port() for key, value in conf_lines(conf) if key == "listener"}
    files: dict[str, Path] = {}
    if certs is not None:
        files = {f"/mosquitto/certs/{p.name}": p for p in certs.iterdir()}
        files.update({f"/mosquitto/config/{n}": conf.parent / n for n in ("acl", "acl-internal")})
    local = tmp / "mosquitto.conf"
    local.write_text(rewrite_conf(conf, tmp, ports, files, getpass.getuser()))
    log = tmp / "mosquitto.log"
    with (tmp / "stdout.log").open("wb") as out:
        proc = subprocess.Popen([find_mosquitto(), "-c", str(local)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        waiting = set(ports.values())
        while waiting and time.monotonic() < deadline:
            if proc.poll() is not None:
                text = log.read_text() if log.exists() else ""
                pytest.fail(f"mosquitto -c {local} (from {conf.name}) exited with {proc.returncode}: "
                            f"{text[-2000:]}{(tmp / 'stdout.log').read_text()[-2000:]}", pytrace=False)
            for port in list(waiting):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    waiting.discard(port)
                except OSError:
                    time.sleep(0.05)
        assert not waiting, f"mosquitto from {conf.name} is not listening on {sorted(waiting)} after {TIMEOUT_S} s"
        yield Running(ports, certs or tmp, log)
    finally:
        stop_broker(proc)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dev_certs(tmp_path_factory.mktemp("certs") / "dev")


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[Running]:
    with _start(MOSQUITTO_PROD, tmp_path_factory.mktemp("prod"), certs) as running:
        yield running


class Client:
    """A paho MQTT v5 client that records what the broker answered: SUBACK and PUBACK reason codes, messages."""

    def __init__(self, port: int, client_id: str, certs: Path | None = None, identity: str = "") -> None:
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        self.pubacks: queue.Queue[tuple[int, int]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected: queue.Queue[int] = queue.Queue()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if certs is not None:
            c.tls_set(ca_certs=str(certs / "ca.crt"), certfile=str(certs / f"{identity}.crt"),
                      keyfile=str(certs / f"{identity}.key"))
        c.on_connect = lambda _c, _u, _f, rc, _p: self.connected.put(rc.value)
        c.on_subscribe = lambda _c, _u, _mid, rcs, _p: self.subacks.put([r.value for r in rcs])
        c.on_publish = self._on_publish
        c.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, bytes(msg.payload)))
        c.connect("localhost", port)  # the broker's certificate names localhost
        c.loop_start()
        self.client = c
        rc = self.connected.get(timeout=TIMEOUT_S)
        assert rc == 0, f"{client_id} ({identity or 'anonymous'}): CONNACK {rc}"

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: Properties) -> None:
        self.pubacks.put((mid, rc.value))

    def subscribe(self, topic: str) -> int:
        self.client.subscribe(topic, qos=1)
        (code,) = self.subacks.get(timeout=TIMEOUT_S)
        return code

    def publish(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish({topic}) refused by paho: {info.rc}"
        mid, code = self.pubacks.get(timeout=TIMEOUT_S)
        assert mid == info.mid
        return code

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_compose_broker_config_starts_and_carries_a_qos1_reading(tmp_path: Path) -> None:
    """The compose config (deploy/mosquitto/mosquitto.conf) starts, listens, and delivers a QoS 1 reading."""
    with _start(MOSQUITTO_COMPOSE, tmp_path, None) as broker:
        port = broker.ports["1883"]
        sub, pub = Client(port, "engine"), Client(port, "sensor")
        try:
            assert sub.subscribe("lifeline/readings/#") == 1
            assert pub.publish("lifeline/readings/gas/GAS-1", b'{"ts": 1, "metric": "ch4_lel", "value": 2}') in ACCEPTED
            assert sub.messages.get(timeout=TIMEOUT_S)[0] == "lifeline/readings/gas/GAS-1"
        finally:
            sub.close()
            pub.close()


# Mosquitto 2.0 grants a SUBSCRIBE and checks read access per message delivered: "may not read" is shown by a
# message that never arrives. Order makes that certain without waiting: the broker routes a PUBLISH to every
# subscriber before it acknowledges it, and writes to each client in order, so once a later message (or a
# PUBACK on the same connection) has arrived, a refused earlier one can no longer come.
READING = b'{"ts": 1, "metric": "ch4_lel", "value": 3}'


@contextlib.contextmanager
def _tls_clients(prod: Running, n: int) -> Iterator[tuple[Client, Client, Client]]:
    """lifeline, lifeline-bridge and the gas sensor GAS-000<n>, each with its certificate; closed at the end."""
    made: list[Client] = []
    try:
        for client_id, identity in ((f"lifeline-engine-{n}", "lifeline"), (f"lifeline-bridge-{n}", "lifeline-bridge"),
                                    (f"GAS-000{n}", "gas")):
            made.append(Client(prod.ports["8883"], client_id, prod.certs, identity))
        yield made[0], made[1], made[2]
    finally:
        for c in made:
            c.close()


def test_prod_acl_sensor_publishes_its_domain_only_and_the_bridge_reads_it(prod: Running) -> None:
    """Over TLS: the gas sensor's reading reaches the bridge; its publishes to another domain and to the alerts are
    refused (PUBACK 0x87) and never delivered; subscribed to the alerts, it receives none."""
    with _tls_clients(prod, 1) as (engine, bridge, sensor):
        assert bridge.subscribe("lifeline/readings/#") == 1
        sensor.subscribe("lifeline/alerts/#")
        assert sensor.publish("lifeline/readings/water/WAT-1", READING) == NOT_AUTHORIZED
        assert sensor.publish("lifeline/alerts/gas/GAS-0001", b"{}") == NOT_AUTHORIZED
        assert engine.publish("lifeline/alerts/gas/GAS-0001", b'{"level": "red"}') in ACCEPTED
        assert sensor.publish("lifeline/readings/gas/GAS-0001", READING) in ACCEPTED  # its PUBACK comes after any alert
        assert sensor.messages.empty(), f"the sensor read an alert: {sensor.messages.get()}"
        assert bridge.messages.get(timeout=TIMEOUT_S) == ("lifeline/readings/gas/GAS-0001", READING)
        assert bridge.publish("lifeline/readings/gas/GAS-0001", READING) == NOT_AUTHORIZED


def test_prod_acl_lifeline_publishes_alerts_and_dead_letters(prod: Running) -> None:
    """Over TLS: lifeline may publish alerts and dead letters and read readings, not publish readings; the bridge
    receives no alert."""
    with _tls_clients(prod, 2) as (engine, bridge, sensor):
        assert engine.subscribe("lifeline/readings/#") == 1
        bridge.subscribe("lifeline/alerts/#")
        assert bridge.subscribe("lifeline/readings/#") == 1
        assert engine.publish("lifeline/alerts/gas/GAS-0002", b'{"level": "red"}') in ACCEPTED
        assert engine.publish("lifeline/deadletter", b'{"reason": "not_json"}') in ACCEPTED
        assert engine.publish("lifeline/readings/gas/GAS-0002", READING) == NOT_AUTHORIZED
        assert sensor.publish("lifeline/readings/gas/GAS-0002", READING) in ACCEPTED
        assert engine.messages.get(timeout=TIMEOUT_S) == ("lifeline/readings/gas/GAS-0002", READING)
        assert bridge.messages.get(timeout=TIMEOUT_S) == ("lifeline/readings/gas/GAS-0002", READING)


def test_prod_tls_listener_refuses_clients_without_a_certificate(prod: Running) -> None:
    """Without a client certificate the TLS listener never answers CONNECT: the handshake fails or the broker
    closes the connection. No anonymous client outside the compose network."""
    connect = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"  # MQTT 3.1.1 CONNECT, empty client id
    ctx = ssl.create_default_context(cafile=str(prod.certs / "ca.crt"))
    answer = b""
    with socket.create_connection(("127.0.0.1", prod.ports["8883"]), timeout=TIMEOUT_S) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(connect)
                answer = tls.recv(4)
        except (ssl.SSLError, ConnectionError):
            pass  # refused during or right after the handshake
    assert answer == b"", f"the broker answered {answer!r} to a client without a certificate"


def test_prod_internal_listener_is_read_only(prod: Running) -> None:
    """The internal plain listener (the bridge, until it speaks TLS): anonymous clients read readings, publish
    nothing, and receive no alert."""
    anon = Client(prod.ports["1883"], "bridge-internal")
    try:
        with _tls_clients(prod, 3) as (engine, _, sensor):
            anon.subscribe("lifeline/alerts/#")
            assert anon.subscribe("lifeline/readings/#") == 1
            assert anon.publish("lifeline/readings/gas/GAS-0003", READING) == NOT_AUTHORIZED
            assert engine.publish("lifeline/alerts/gas/GAS-0003", b'{"level": "red"}') in ACCEPTED
            assert sensor.publish("lifeline/readings/gas/GAS-0003", READING) in ACCEPTED
            assert anon.messages.get(timeout=TIMEOUT_S) == ("lifeline/readings/gas/GAS-0003", READING)
    finally:
        anon.close()
