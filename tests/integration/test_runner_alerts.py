"""Readings published with paho and with mosquitto_pub produce the expected stored and published alerts."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lifeline.sinks.jsonl import read_events
from lifeline.sinks.store import AlertStore
from tests.integration.conftest import Broker
from tests.integration.helpers import (
    WALK,
    WALK_EVENTS,
    Collector,
    Publisher,
    config,
    gas,
    publish_walk,
    start_thread_runner,
    wait_for,
)

pytestmark = pytest.mark.integration

SERIES, EXPECTED = WALK, WALK_EVENTS


def _mosquitto_pub() -> str:
    exe = shutil.which("mosquitto_pub")
    if exe is None:
        pytest.fail("mosquitto_pub is not installed (apt-get install mosquitto-clients)", pytrace=False)
    return exe


def _events_of(store_path: Path, sensor: str) -> list[tuple[str, str]]:
    with AlertStore(store_path) as store:
        return [(e.event.value, e.level.colour) for e in sorted(store.events(), key=lambda e: (e.ts, e.seq))
                if e.sensor == sensor]


def test_runner_paho_readings_become_stored_and_published_alerts(mosquitto: Broker, tmp_path: Path) -> None:
    """Six paho QoS 1 readings walk one alert through fired/escalated/deescalated/resolved: stored first,
    published on lifeline/alerts/gas/<sensor>, written to --alerts-out, one id throughout."""
    cfg = config(mosquitto.port, tmp_path, client_id="it-paho")
    collector = Collector(mosquitto.host, mosquitto.port, ["lifeline/alerts/#"])
    runner = start_thread_runner(cfg)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        publish_walk(pub)
        wait_for(lambda: len(collector.on("lifeline/alerts/gas/gas-0001")) >= 5, 15, "5 published alert events")
    finally:
        pub.close()
        runner.stop()
        collector.close()
    assert _events_of(tmp_path / "lifeline.db", "gas-0001") == EXPECTED
    published = collector.on("lifeline/alerts/gas/gas-0001")
    assert [(p["event"], p["level"]) for _, p in published] == EXPECTED
    assert len({p["id"] for _, p in published}) == 1
    assert {"id", "rule", "subject", "domain", "district", "level", "state", "event", "started", "ts", "value",
            "message"} <= set(published[0][1])
    assert [(e.event.value, e.level.colour) for e in read_events(tmp_path / "alerts.jsonl")] == EXPECTED
    journal = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert len(journal) == len(SERIES)


def test_runner_mosquitto_pub_one_per_call_and_kept_open(mosquitto: Broker, tmp_path: Path) -> None:
    """mosquitto_pub, once per message and with -l on an input kept open until the broker delivered,
    feeds the runner; the alerts it causes are stored and published."""
    exe = _mosquitto_pub()
    cfg = config(mosquitto.port, tmp_path, client_id="it-mosqpub")
    collector = Collector(mosquitto.host, mosquitto.port, ["lifeline/alerts/#"])
    runner = start_thread_runner(cfg)
    t0 = time.time() - 600
    try:
        for i, v in enumerate(SERIES):
            topic, payload = gas(2, t0 + i, v)
            subprocess.run([exe, "-h", mosquitto.host, "-p", str(mosquitto.port), "-q", "1", "-t", topic,
                            "-m", payload.decode()], check=True, timeout=10)
        wait_for(lambda: len(collector.on("lifeline/alerts/gas/gas-0002")) >= 5, 15, "alerts of gas-0002")
        topic = "lifeline/readings/gas/gas-0003"
        proc = subprocess.Popen([exe, "-h", mosquitto.host, "-p", str(mosquitto.port), "-q", "1", "-t", topic,
                                 "-l"], stdin=subprocess.PIPE)
        assert proc.stdin is not None
        for i, v in enumerate(SERIES):
            proc.stdin.write(gas(3, t0 + i, v)[1] + b"\n")
        proc.stdin.flush()
        # keep stdin open until everything arrived: mosquitto_pub -l drops what is queued at EOF
        wait_for(lambda: len(collector.on("lifeline/alerts/gas/gas-0003")) >= 5, 15, "alerts of gas-0003")
        proc.stdin.close()
        proc.wait(timeout=10)
    finally:
        runner.stop()
        collector.close()
    for sensor in ("gas-0002", "gas-0003"):
        assert _events_of(tmp_path / "lifeline.db", sensor) == EXPECTED
        assert [(p["event"], p["level"]) for _, p in collector.on(f"lifeline/alerts/gas/{sensor}")] == EXPECTED
