"""SIGKILL the runner mid-stream while a publisher keeps sending QoS 1; restart it: every reading the
broker accepted is processed exactly once in the engine's view and no alert event is duplicated."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from lifeline.codec import decode
from lifeline.engine import Engine
from lifeline.model import Reading
from lifeline.sinks.store import AlertStore
from lifeline.sources.replay import replay
from tests.integration.conftest import Broker
from tests.integration.helpers import Publisher, city, gas, spawn_runner, wait_for

pytestmark = pytest.mark.integration

SENSORS, PER_SENSOR = 20, 150
PATTERN = [1, 6, 12, 25, 55, 30, 12, 6, 2, 0]


def _messages(t0: float) -> list[tuple[str, bytes]]:
    out = []
    for i in range(PER_SENSOR):
        for s in range(SENSORS):
            out.append(gas(s, t0 + i, PATTERN[(i + s) % len(PATTERN)] + s * 0.1, seq=i))
    return out


def _journal_readings(path: Path) -> list[tuple[str, int]]:
    _, reg = city()
    return [(r.sensor, r.seq or 0) for item in replay(path, registry=reg) for r in item.readings]


def _backtest(readings: list[Reading]) -> set[tuple[str, int, str, float]]:
    rules, reg = city()
    return {(e.id, e.seq, e.level.colour, e.ts) for e in Engine(rules, reg).process(readings).events}


def _wait_subscribed(log: Path, n: int) -> None:
    wait_for(lambda: log.exists() and log.read_text().count("MQTT subscribed") >= n, 20, f"runner subscription #{n}")


def test_runner_sigkill_mid_stream_loses_and_duplicates_nothing(mosquitto: Broker, tmp_path: Path) -> None:
    """Kill -9 during a QoS 1 stream, restart: the journal holds every accepted reading exactly once
    (apart from redeliveries the engine dead-lettered), and the store's alert events equal an
    uninterrupted backtest's, with no duplicates."""
    msgs = _messages(time.time() - 7200)
    proc = spawn_runner(mosquitto.port, tmp_path, "it-crash")
    procs = [proc]
    try:
        _wait_subscribed(tmp_path / "runner.log", 1)
        pub = Publisher(mosquitto.host, mosquitto.port)
        done = threading.Event()

        def send() -> None:
            for k, (topic, payload) in enumerate(msgs):
                pub.publish(topic, payload)
                if k % 50 == 49:
                    time.sleep(0.03)  # ~1,500 msg/s: the kill lands mid-stream
            done.set()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        journal = tmp_path / "journal.jsonl"
        wait_for(lambda: journal.exists() and journal.stat().st_size > 40_000, 20, "the runner to commit batches")
        assert not done.is_set(), "publisher finished before the kill; slow it down"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc = spawn_runner(mosquitto.port, tmp_path, "it-crash")
        procs.append(proc)
        sender.join(timeout=60)
        assert done.is_set()
        pub.wait_acked(60)
        pub.close()
        wanted = {(f"gas-{s:04d}", i) for s in range(SENSORS) for i in range(PER_SENSOR)}
        wait_for(lambda: set(_journal_readings(journal)) >= wanted, 60, "every accepted reading in the journal",
                 every=0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)

    seen = Counter(_journal_readings(journal))
    assert set(seen) == wanted
    with AlertStore(tmp_path / "lifeline.db") as store:
        dead = store.deadletter_counts()
        events = store.events()
    redelivered = sum(seen.values()) - len(wanted)
    assert redelivered == dead.get("late", 0) + dead.get("duplicate_seq", 0), (redelivered, dead)
    assert set(dead) <= {"late", "duplicate_seq"}, dead
    stored = [(e.id, e.seq, e.level.colour, e.ts) for e in events]
    assert len(stored) == len(set(stored))
    _, reg = city()
    sent = [r for topic, payload in msgs
            for r in decode(topic, payload, registry=reg, received_at=None).readings]
    expected = _backtest(sent)
    assert expected and set(stored) == expected
    # the journal is a faithful input log: replaying it gives the store's events too
    replayed = [r for item in replay(journal, registry=reg) for r in item.readings]
    assert _backtest(replayed) == expected
    log = (tmp_path / "runner.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    print(f"redelivered after SIGKILL: {redelivered}; dead letters {dead}; events {len(stored)}; "
          f"payload sample {orjson.loads(msgs[0][1])}")
