"""A simulated scenario through a real Mosquitto into ``lifeline run``; alerts equal the ground truth,
and ``lifeline backtest`` on the run's journal writes exactly the alerts the live engine stored."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import orjson
import pytest

from lifeline.sinks.jsonl import read_events
from lifeline.sinks.store import AlertStore
from simulators.runner import Run
from tests.integration.conftest import Broker
from tests.integration.helpers import REPO, Publisher, wait_for
from tests.scenario.conftest import expected_levels, max_levels, simulate

pytestmark = pytest.mark.e2e


def _wire(line: bytes) -> tuple[str, bytes]:
    """A replay line -> (topic, payload) as the sensor itself would publish it."""
    obj = orjson.loads(line)
    sensor, domain = obj.pop("sensor"), obj.pop("domain")
    return f"lifeline/readings/{domain}/{sensor}", orjson.dumps(obj)


def _lifeline(*args: str, log: IO[bytes], cwd: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "lifeline.cli", *args], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _journal_readings(path: Path) -> int:
    if not path.exists():
        return 0
    n = 0
    for line in path.read_bytes().splitlines():
        obj = orjson.loads(line)
        n += len(obj.get("metrics", {}))
    return n


def _publish_paho(broker: Broker, run: Run) -> None:
    pub = Publisher(broker.host, broker.port, client_id="e2e-sensors-paho")
    try:
        for line in run.lines():
            pub.publish(*_wire(line))
        pub.wait_acked()
    finally:
        pub.close()


def _publish_mosquitto_pub(broker: Broker, run: Run) -> list[subprocess.Popen[bytes]]:
    """One ``mosquitto_pub -l -q 1`` per sensor topic, lines in order; stdin is closed only after the
    engine has seen everything (mosquitto_pub drops what is still queued when its input ends)."""
    exe = shutil.which("mosquitto_pub")
    if exe is None:
        pytest.fail("mosquitto_pub is not installed (apt-get install mosquitto-clients)", pytrace=False)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for line in run.lines():
        topic, payload = _wire(line)
        if topic not in procs:
            procs[topic] = subprocess.Popen([exe, "-h", broker.host, "-p", str(broker.port), "-q", "1", "-t", topic,
                                             "-l", "-i", f"e2e-{len(procs)}"], stdin=subprocess.PIPE)
        stdin = procs[topic].stdin
        assert stdin is not None
        stdin.write(payload + b"\n")
        stdin.flush()
    return list(procs.values())


@pytest.mark.parametrize("publisher", ["paho", "mosquitto_pub"])
def test_e2e_scenario_alerts_equal_ground_truth_and_backtest(mosquitto: Broker, tmp_path: Path,
                                                             publisher: str) -> None:
    """e2e_small published by sensors over Mosquitto: the stored alerts reach exactly the expected
    (rule, sensor, level); backtest of the journal gives identical events (ids, levels, times)."""
    run = simulate("e2e_small")
    truth = run.truth()
    db, journal, live = tmp_path / "lifeline.db", tmp_path / "journal.jsonl", tmp_path / "alerts.jsonl"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        engine = _lifeline("--log-level", "INFO", "run", "--broker", mosquitto.address, "--client-id",
                           f"e2e-engine-{publisher}", "--db", str(db), "--journal", str(journal),
                           "--alerts-out", str(live), log=log, cwd=tmp_path)
    pubs: list[subprocess.Popen[bytes]] = []
    try:
        wait_for(lambda: b"MQTT subscribed" in log_path.read_bytes() or engine.poll() is not None, 30,
                 "the engine to subscribe")
        assert engine.poll() is None, log_path.read_text()
        if publisher == "paho":
            _publish_paho(mosquitto, run)
        else:
            pubs = _publish_mosquitto_pub(mosquitto, run)
        expected_readings = sum(len(orjson.loads(line)["metrics"]) for line in run.lines())
        wait_for(lambda: _journal_readings(journal) >= expected_readings, 60,
                 f"the engine to journal all {expected_readings} readings")
    finally:
        for p in pubs:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(timeout=10)
        engine.send_signal(signal.SIGTERM)
        engine.wait(timeout=30)
    assert engine.returncode == 0, log_path.read_text()[-3000:]
    assert _journal_readings(journal) == expected_readings

    with AlertStore(db) as store:
        stored = sorted(store.events(), key=lambda e: (e.ts, e.id, e.seq))
        assert store.deadletter_counts() == {}
    assert max_levels(stored) == expected_levels(truth)

    out = tmp_path / "backtest.jsonl"
    with (tmp_path / "backtest.log").open("wb") as log:
        bt = _lifeline("backtest", "--input", str(journal), "--out", str(out), "--quiet", log=log, cwd=tmp_path)
        assert bt.wait(timeout=120) == 0, (tmp_path / "backtest.log").read_text()
    replayed = list(read_events(out))
    key = [(e.id, e.seq, e.rule, e.sensor, e.event.value, e.level.colour, e.started, e.ts) for e in stored]
    assert sorted(key) == sorted((e.id, e.seq, e.rule, e.sensor, e.event.value, e.level.colour, e.started, e.ts)
                                 for e in replayed)
    assert out.read_bytes() == live.read_bytes()  # the same writer: byte-identical files
