"""The scale-out path over real sockets: a simulator scenario published to a real Mosquitto, `lifeline bridge`
into librdkafka's mock cluster (a real Kafka-protocol broker, ``lifeline.testing_kafka``), two `lifeline worker`
processes (faust-streaming), and `lifeline deliver` into the alert store and a log receiver. The store holds
exactly the alerts of `lifeline backtest` on the same input (ids, levels, transitions, times); with one worker
SIGKILLed mid-stream, the other takes its partitions over and still no alert is lost and none is doubled."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from lifeline import paths
from lifeline.commands.backtest import run_backtest
from lifeline.engine import Engine
from lifeline.kafka.records import TICK_TOPIC, WATERMARK_KEY, tick_value
from lifeline.rules.loader import load_rules
from lifeline.sources.replay import tick_line
from lifeline.testing_broker import Broker
from lifeline.testing_kafka import MockKafka, read_topic
from tests.integration.conftest import mock_kafka
from tests.integration.helpers import REPO, Publisher, wait_for
from tests.scenario.conftest import demo_registry, simulate

pytestmark = pytest.mark.integration

PARTITIONS = 4
END_TICK_S = 600.0  # the end of the input, told to every partition: sensors silent since then are found


class Proc:
    """``python -m lifeline.cli <args>`` in its own process, its output in a file; ended by the fixture."""

    started: list[Proc] = []  # noqa: RUF012

    def __init__(self, tmp: Path, name: str, *args: str) -> None:
        self.name = name
        self.log = tmp / f"{name}.log"
        Proc.started.append(self)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "lifeline.cli", *args], cwd=tmp,
                                         env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out,
                                         stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def kafka4() -> Iterator[MockKafka]:
    """The mock cluster with the topics of the layout (docs/kafka.md), PARTITIONS each: the mock cannot create
    topics through the API, so they are made here, as `kafka-topics.sh` would in production."""
    yield from mock_kafka([(t, PARTITIONS) for t in ("readings", "alerts", "deadletter", "lifeline-engine-changelog")])


def _scenario() -> tuple[list[bytes], float, dict[tuple[str, int], dict[str, Any]]]:
    """The demo city's first 20 minutes (every domain's incident, neighbourhood rules, nodata) and what
    `lifeline backtest` makes of it, with the same end tick."""
    lines = list(simulate("demo", duration=1200.0).lines())
    end = max(orjson.loads(line)["ts"] for line in lines) + END_TICK_S
    events, dead = run_backtest(Engine(load_rules([paths.REPO / "rules"]), demo_registry()),
                                iter([*lines, tick_line(end)]))
    assert not dead, dead
    return lines, end, {(e.id, e.seq): _key_fields(e.to_dict()) for e in events}


def _key_fields(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in ("id", "seq", "rule", "subject", "sensor", "level", "event", "state", "started", "ts")}


def _publish(broker: Broker, lines: list[bytes]) -> None:
    pub = Publisher(broker.host, broker.port, client_id=f"sensors-{time.monotonic_ns()}")
    try:
        for line in lines:
            obj = orjson.loads(line)
            sensor, domain = obj.pop("sensor"), obj.pop("domain")
            pub.publish(f"lifeline/readings/{domain}/{sensor}", orjson.dumps(obj))
        pub.wait_acked(60)
    finally:
        pub.close()


def _tick(broker: Broker, ts: float) -> None:
    pub = Publisher(broker.host, broker.port, client_id=f"ticker-{time.monotonic_ns()}")
    try:
        pub.publish(TICK_TOPIC, tick_value(ts))
        pub.wait_acked(10)
    finally:
        pub.close()


def _stored(db: Path) -> dict[tuple[str, int], dict[str, Any]]:
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT id, seq, rule, subject, sensor, level, event, state, started, ts "
                           "FROM alert_events").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        con.close()
    cols = ("id", "seq", "rule", "subject", "sensor", "level", "event", "state", "started", "ts")
    return {(r[0], r[1]): dict(zip(cols, r, strict=True)) for r in rows}


@dataclass
class Stack:
    """The running pipeline: bridge, workers, deliver (their processes end before the broker and Kafka do)."""

    tmp: Path
    broker: Broker
    kafka: MockKafka
    bridge: Proc
    deliver: Proc
    db: Path
    notes: Path
    workers: list[Proc] = field(default_factory=list)

    def start_worker(self) -> Proc:
        i = len(self.workers)
        data = self.tmp / f"worker{i}"
        # the first keeps its table in memory (as in tests), the second in RocksDB (as in production)
        store = "memory://" if i == 0 else f"rocksdb://{data}/engine"
        w = Proc(self.tmp, f"worker{i}", "worker", "--kafka", self.kafka.bootstrap, "--partitions", str(PARTITIONS),
                 "--data-dir", str(data), "--store", store, "--session-timeout", "6s", "--rebalance-timeout", "8s",
                 "--checkpoint-every", "1s", "--status-every", "1s", "--sync-grace", "1s")
        self.workers.append(w)
        return w

    def alive(self) -> list[Proc]:
        return [p for p in (self.bridge, self.deliver, *self.workers) if p.alive()]


@pytest.fixture
def stack(mosquitto: Broker, kafka4: MockKafka, tmp_path: Path) -> Iterator[Stack]:
    routes = tmp_path / "routes.yaml"
    notes = tmp_path / "notifications.jsonl"
    routes.write_text(f"receivers:\n  - {{name: duty_log, log: {{path: {notes}}}}}\nroute:\n  receiver: duty_log\n")
    boot = kafka4.bootstrap
    procs: list[Proc] = []
    try:
        bridge = Proc(tmp_path, "bridge", "bridge", "--broker", mosquitto.address, "--kafka", boot,
                      "--status-every", "1s")
        procs.append(bridge)
        db = tmp_path / "lifeline.db"
        deliver = Proc(tmp_path, "deliver", "deliver", "--kafka", boot, "--db", str(db), "--routes", str(routes),
                       "--status-every", "2s")
        procs.append(deliver)
        wait_for(lambda: " received" in bridge.text() or not bridge.alive(), 30, "the bridge's first status line")
        assert bridge.alive(), bridge.text()
        st = Stack(tmp_path, mosquitto, kafka4, bridge, deliver, db, notes)
        yield st
        procs += st.workers
    finally:
        for p in reversed(procs):
            p.stop()


def _join(stack: Stack, lines: list[bytes]) -> None:
    """The first worker takes every partition, then a second joins (a rebalance) and takes some: publishing
    ``lines`` in two halves, one before each."""
    half = len(lines) // 2
    first = stack.start_worker()
    _publish(stack.broker, lines[:half])
    wait_for(lambda: bool(_owned(first)), 60, "the first worker to process its partitions")
    second = stack.start_worker()
    _publish(stack.broker, lines[half:])
    wait_for(lambda: bool(_owned(second)) or not second.alive(), 90, "the second worker to take partitions")
    assert _owned(first) | _owned(second) == set(range(PARTITIONS)), (first.text()[-2000:], second.text()[-2000:])


def _wait_stored(db: Path, want: int, procs: list[Proc], timeout: float) -> None:
    def done() -> bool:
        for p in procs:
            assert p.alive(), f"{p.name} exited:\n{p.text()[-3000:]}"
        return len(_stored(db)) >= want

    wait_for(done, timeout, f"{want} alert transitions in the store (have {len(_stored(db))})", every=0.5)
    time.sleep(2.0)  # anything more (a transition too many) would show now


def _topic_counts(kafka: MockKafka, want: int) -> Counter[tuple[str, int]]:
    out: Counter[tuple[str, int]] = Counter()
    for r in read_topic(kafka.bootstrap, "alerts", want, timeout=30, idle_s=2.0):
        if r.key is not None and r.key.startswith(WATERMARK_KEY):
            continue
        d = orjson.loads(r.value)
        out[(d["id"], d["seq"])] += 1
    return out


def _records(worker: Proc) -> int:
    """Records processed, from the worker's last status line."""
    found = re.findall(r"worker: (\d+) records", worker.text())
    return int(found[-1]) if found else 0


def _owned(worker: Proc) -> set[int]:
    """The partitions a worker's last status line names ("partitions 0@1053, 2@1910")."""
    found = re.findall(r"partitions ((?:\d+@(?:-?\d+|\?)(?:, )?)+)", worker.text())
    return {int(x.split("@")[0]) for x in found[-1].split(", ")} if found else set()


def _notified(notes: Path) -> Counter[str]:
    if not notes.exists():
        return Counter()
    return Counter(orjson.loads(line)["key"] for line in notes.read_bytes().splitlines())


def test_two_workers_on_kafka_store_exactly_the_alerts_of_a_backtest(stack: Stack) -> None:
    lines, end, expected = _scenario()
    third = len(lines) // 3
    _join(stack, lines[:2 * third])  # one worker, then two
    _publish(stack.broker, lines[2 * third:])
    _tick(stack.broker, end)
    _wait_stored(stack.db, len(expected), stack.alive(), 240)
    assert _stored(stack.db) == expected  # ids, levels, transitions, times: those of lifeline backtest
    assert {e["rule"].split(".")[0] for e in expected.values()} >= {"gas", "water", "drainage", "elevator", "crowd"}
    assert any(":" in e["subject"] for e in expected.values()), "no neighbourhood group alert in the scenario"
    assert any(e["rule"].endswith("nodata") for e in expected.values()), "no nodata alert in the scenario"
    topic = _topic_counts(stack.kafka, len(expected))
    assert set(topic) == set(expected)
    keys = _notified(stack.notes)
    assert keys and max(keys.values()) == 1  # every notification once
    print(f"\n{len(expected)} transitions of {len({i for i, _ in expected})} alerts, as the backtest's; "
          f"{sum(n - 1 for n in topic.values())} re-sent at the rebalance and dropped by deliver")


def test_a_worker_killed_mid_stream_loses_no_alert_and_doubles_none(stack: Stack) -> None:
    lines, end, expected = _scenario()
    third = len(lines) // 3
    _join(stack, lines[:2 * third])
    first, second = stack.workers
    before = _records(first)
    rest = threading.Thread(target=_publish, args=(stack.broker, lines[2 * third:]))
    rest.start()
    # mid-stream: killed once it is at work on the last third, with records taken and not yet acknowledged
    wait_for(lambda: _records(first) > before + 200, 60, "the first worker to work on the last third")
    first.stop(signal.SIGKILL)
    killed_at = _records(first)
    rest.join(120)
    _tick(stack.broker, end)
    _wait_stored(stack.db, len(expected), [stack.bridge, stack.deliver, second], 240)
    stored = _stored(stack.db)
    assert stored == expected  # nothing lost, nothing extra: the ids, levels, transitions and times of the backtest
    per_alert = Counter(i for i, _ in stored)
    assert per_alert == Counter(i for i, _ in expected)  # counted per alert id
    assert _owned(second) == set(range(PARTITIONS)), second.text()[-3000:]  # it took the dead one's over
    assert list((stack.tmp / "worker1").glob("engine-*.db")), "the survivor's RocksDB table files"
    topic = _topic_counts(stack.kafka, len(expected))
    assert set(topic) == set(expected)
    resent = sum(n - 1 for n in topic.values())
    keys = _notified(stack.notes)
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1][:5]
    print(f"\nkilled after {killed_at - before} records of the last third; {len(expected)} transitions of "
          f"{len(per_alert)} alerts; {resent} events re-sent after the takeover (deliver dropped them); "
          f"{sum(keys.values())} notifications, each once")


def test_a_worker_stops_on_sigterm_even_when_kafka_is_gone(tmp_path: Path) -> None:
    """With Kafka up, SIGTERM stops a worker cleanly (exit 0); with Kafka gone, aiokafka never finishes stopping,
    and the worker exits anyway after --stop-timeout (exit 1, saying why) instead of hanging."""
    for kafka_gone in (False, True):
        gen = mock_kafka([(t, 2) for t in ("readings", "alerts", "deadletter", "lifeline-engine-changelog")])
        cluster = next(gen)
        w = Proc(tmp_path, f"stopper{int(kafka_gone)}", "worker", "--kafka", cluster.bootstrap, "--partitions", "2",
                 "--data-dir", str(tmp_path / "stopper"), "--session-timeout", "6s", "--rebalance-timeout", "8s",
                 "--status-every", "1s", "--stop-timeout", "5s")
        try:
            wait_for(lambda w=w: _owned(w) == {0, 1} or not w.alive(), 60, "the worker to own its partitions")
            if kafka_gone:
                gen.close()  # the mock cluster ends
            t0 = time.monotonic()
            w.proc.send_signal(signal.SIGTERM)
            w.proc.wait(30)
            took = time.monotonic() - t0
            if kafka_gone:
                assert w.proc.returncode == 1 and 4.5 < took < 20, (w.proc.returncode, took)
                assert "could not stop cleanly within 5 s" in w.text()
            else:
                assert w.proc.returncode == 0 and took < 10, (w.proc.returncode, took, w.text()[-2000:])
        finally:
            w.stop(signal.SIGKILL)
            gen.close()
