"""A real Kafka-protocol broker for tests: librdkafka's mock cluster, in a small process of its own.

``../shared/DESIGN.md`` §4: the stream bus here is the mock cluster built into librdkafka (the C library
inside ``confluent-kafka``). It speaks the Kafka protocol on loopback ports, so the bridge (confluent-kafka)
and the Faust workers (aiokafka) connect to it like to any Kafka. It lives inside one librdkafka instance,
so it runs in its own process, ``python -m lifeline.testing_kafka``, which prints the bootstrap address on
stdout and lives until its stdin closes (its parent died or ``MockKafka.stop``) or it gets SIGTERM.

What the mock can and cannot do (librdkafka 2.x, measured):

* it handles Produce, Fetch, Metadata, consumer groups, idempotent producers and transactions, but **not
  CreateTopics**: ``AdminClient.create_topics`` (and aiokafka's admin client) fail with "Failed while waiting
  for controller" (the mock reports controller id 0, which is no broker). Topics are auto-created by a
  metadata request or a produce, with the mock's fixed defaults: **4 partitions**, replication
  ``min(3, brokers)``; no client setting changes those defaults;
* a topic with N partitions is made through librdkafka's mock C API (``rd_kafka_mock_topic_create``), which
  this process calls through ``ctypes``: the ``topic NAME PARTITIONS`` command on stdin, or
  ``MockKafka.create_topic``. Create it before anyone produces to it (or asks for its metadata);
* brokers can be stopped and started again (``rd_kafka_mock_broker_set_down`` / ``_set_up``): connections are
  closed and refused, and the data stays. That is Kafka being unreachable for a while, without losing
  what it had: the ``down``/``up`` commands, ``MockKafka.brokers_down`` / ``brokers_up``;
* data lives in memory only: when this process ends, everything is gone.

Commands, one per line on stdin, each answered by one line on stdout (``ok`` or ``error: ...``)::

    topic readings 6      create topic "readings" with 6 partitions (replication 1)
    down all | down 2     stop every broker / broker 2 (connections closed and refused)
    up all | up 2         start them again
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from lifeline.errors import LifelineError
from lifeline.paths import REPO


class KafkaMockError(LifelineError):
    """The mock cluster could not be started or did not do what was asked; the message says why."""


# ---- the mock cluster, through librdkafka's C API (inside the mock's own process) -----------------------
def _librdkafka() -> ctypes.CDLL:
    """The librdkafka that confluent-kafka ships (its wheel bundles it next to the package)."""
    import confluent_kafka

    pkg = os.path.dirname(os.path.abspath(confluent_kafka.__file__))
    found = sorted(glob.glob(os.path.join(pkg + ".libs", "librdkafka*.so*")))
    name = found[0] if found else "librdkafka.so.1"  # a confluent-kafka built against the system's library
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise KafkaMockError(f"cannot load librdkafka ({name}) for the mock cluster: {exc}") from None
    vp, cp, i32 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "rd_kafka_conf_new": (vp, []),
        "rd_kafka_conf_set": (ctypes.c_int, [vp, cp, cp, cp, ctypes.c_size_t]),
        "rd_kafka_new": (vp, [ctypes.c_int, vp, cp, ctypes.c_size_t]),
        "rd_kafka_destroy": (None, [vp]),
        "rd_kafka_err2str": (cp, [ctypes.c_int]),
        "rd_kafka_mock_cluster_new": (vp, [vp, ctypes.c_int]),
        "rd_kafka_mock_cluster_destroy": (None, [vp]),
        "rd_kafka_mock_cluster_bootstraps": (cp, [vp]),
        "rd_kafka_mock_topic_create": (ctypes.c_int, [vp, cp, ctypes.c_int, ctypes.c_int]),
        "rd_kafka_mock_broker_set_down": (ctypes.c_int, [vp, i32]),
        "rd_kafka_mock_broker_set_up": (ctypes.c_int, [vp, i32]),
    }
    for fn, (restype, argtypes) in sigs.items():
        f = getattr(lib, fn, None)
        if f is None:
            raise KafkaMockError(f"{name} has no {fn}: this librdkafka was built without the mock cluster")
        f.restype, f.argtypes = restype, argtypes
    return lib


class MockCluster:
    """A mock cluster of ``brokers`` brokers on 127.0.0.1, owned by this process."""

    def __init__(self, brokers: int = 3) -> None:
        self.lib = lib = _librdkafka()
        self.broker_ids = tuple(range(1, brokers + 1))
        err = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        lib.rd_kafka_conf_set(conf, b"log_level", b"3", err, len(err))
        self._rk = lib.rd_kafka_new(0, conf, err, len(err))  # 0: a producer handle, only to host the cluster
        if not self._rk:
            raise KafkaMockError(f"librdkafka: {err.value.decode()}")
        self._mc = lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._mc:
            lib.rd_kafka_destroy(self._rk)
            raise KafkaMockError("librdkafka could not create a mock cluster (see its log above)")
        self.bootstrap: str = lib.rd_kafka_mock_cluster_bootstraps(self._mc).decode()

    def _check(self, what: str, code: int) -> None:
        if code:
            raise KafkaMockError(f"{what}: {self.lib.rd_kafka_err2str(code).decode()}")

    def create_topic(self, name: str, partitions: int, replication: int = 1) -> None:
        self._check(f"create topic {name!r} with {partitions} partitions",
                    self.lib.rd_kafka_mock_topic_create(self._mc, name.encode(), partitions, replication))

    def set_down(self, broker_id: int) -> None:
        self._check(f"stop broker {broker_id}", self.lib.rd_kafka_mock_broker_set_down(self._mc, broker_id))

    def set_up(self, broker_id: int) -> None:
        self._check(f"start broker {broker_id}", self.lib.rd_kafka_mock_broker_set_up(self._mc, broker_id))

    def close(self) -> None:
        self.lib.rd_kafka_mock_cluster_destroy(self._mc)
        self.lib.rd_kafka_destroy(self._rk)


def run_command(cluster: MockCluster, line: str) -> str:
    """One stdin command (see the module doc) -> its answer line."""
    words = line.split()
    try:
        if len(words) == 3 and words[0] == "topic" and words[2].isdigit():
            cluster.create_topic(words[1], int(words[2]))
        elif len(words) == 2 and words[0] in ("down", "up"):
            ids = cluster.broker_ids if words[1] == "all" else (int(words[1]),)
            for b in ids:
                (cluster.set_down if words[0] == "down" else cluster.set_up)(b)
        else:
            return f"error: unknown command {line.strip()!r} (topic NAME PARTITIONS | down all|ID | up all|ID)"
    except (KafkaMockError, ValueError) as exc:
        return f"error: {exc}"
    return "ok"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lifeline.testing_kafka", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", type=int, default=3, help="mock brokers (default: %(default)s)")
    ap.add_argument("--topic", action="append", default=[], metavar="NAME:PARTITIONS",
                    help="create this topic at start (repeat)")
    args = ap.parse_args(argv)
    cluster = MockCluster(args.brokers)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for spec in args.topic:
            name, _, n = spec.rpartition(":")
            cluster.create_topic(name, int(n))
        print(cluster.bootstrap, flush=True)
        reader = threading.Thread(target=_serve_stdin, args=(cluster, stop), daemon=True)
        reader.start()
        while not stop.wait(0.2):
            pass
    finally:
        cluster.close()
    return 0


def _serve_stdin(cluster: MockCluster, stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip():
            print(run_command(cluster, line), flush=True)
    stop.set()  # end of input: whoever started us is gone or done


# ---- the parent's side: start the process, send it commands ------------------------------------------------
@dataclass
class MockKafka:
    """A running ``python -m lifeline.testing_kafka``: ``bootstrap`` is its ``bootstrap.servers``."""

    proc: subprocess.Popen[str]
    bootstrap: str
    brokers: int

    def command(self, line: str, timeout: float = 10.0) -> None:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(line + "\n")
        stdin.flush()
        answer = _read_line(stdout, timeout, f"the mock cluster's answer to {line!r}")
        if answer != "ok":
            raise KafkaMockError(f"mock cluster: {line!r}: {answer}")

    def create_topic(self, name: str, partitions: int) -> None:
        """Create ``name`` with ``partitions`` partitions (before anything produces to it)."""
        self.command(f"topic {name} {partitions}")

    def brokers_down(self) -> None:
        """Every broker closes its connections and refuses new ones; the data stays."""
        self.command("down all")

    def brokers_up(self) -> None:
        self.command("up all")

    def stop(self) -> None:
        """End exactly this process: close its stdin (it exits), SIGKILL if it has not within 10 s."""
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _read_line(stream: IO[str], timeout: float, what: str) -> str:
    box: list[str] = []
    t = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    if not box:
        raise KafkaMockError(f"no {what} within {timeout:g} s")
    return box[0].strip()


def start_kafka(brokers: int = 3, topics: Iterable[tuple[str, int]] = (), timeout: float = 20.0) -> MockKafka:
    """Start the mock cluster in its own process; return once it has printed its bootstrap address."""
    args = [f"--topic={name}:{n}" for name, n in topics]
    proc = subprocess.Popen([sys.executable, "-m", "lifeline.testing_kafka", "--brokers", str(brokers), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    try:
        line = _read_line(proc.stdout, timeout, "bootstrap address from python -m lifeline.testing_kafka")
    except KafkaMockError:
        proc.kill()
        proc.wait()
        raise
    if not line or proc.poll() is not None:
        proc.wait()
        raise KafkaMockError(f"python -m lifeline.testing_kafka exited with {proc.returncode} at start")
    return MockKafka(proc, line, brokers)


def _bytes(b: str | bytes | None) -> bytes:
    return b.encode() if isinstance(b, str) else b or b""


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def read_topic(bootstrap: str, topic: str, want: int, timeout: float = 30.0, *, idle_s: float = 1.0) -> list[Record]:
    """Every record of ``topic`` from the start of each partition (no consumer group): read until at least
    ``want`` arrived and nothing more came for ``idle_s`` (so extra records, duplicates, show), or ``timeout``."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{os.getpid()}", "enable.auto.commit": False,
                  "log_level": 3})
    try:
        deadline = time.monotonic() + timeout
        while (meta := c.list_topics(topic, timeout=10).topics[topic]).error is not None:  # not written to yet
            if time.monotonic() > deadline:
                raise KafkaMockError(f"topic {topic!r}: {meta.error.str()} after {timeout:g} s")
            time.sleep(0.1)
        c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])  # offset 0: from the beginning
        out: list[Record] = []
        last_new = time.monotonic()
        while time.monotonic() < deadline and (len(out) < want or time.monotonic() - last_new < idle_s):
            for m in c.consume(1000, 0.2):
                if m.error() is not None:
                    raise KafkaException(m.error())
                headers = m.headers() or []
                pairs = headers.items() if isinstance(headers, dict) else headers
                out.append(Record(m.partition() or 0, m.offset() or 0, m.key(), m.value() or b"",
                                  tuple((k, _bytes(v)) for k, v in pairs)))
                last_new = time.monotonic()
        return out
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(main())
