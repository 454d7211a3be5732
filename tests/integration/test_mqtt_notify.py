"""MQTT republish through the routing file and the outbox against the real Mosquitto: one QoS 1 message per
notification on the receiver's topic, rendered in its language; a broker that cannot be reached is retried."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.alerting.outbox import Dispatcher
from lifeline.alerting.routing import load_routing
from lifeline.clock import ManualClock
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import Notification
from lifeline.sinks.store import AlertStore
from lifeline.testing_broker import free_port
from tests.integration.conftest import Broker
from tests.integration.helpers import Collector, wait_for

pytestmark = pytest.mark.integration
T = 1784044800.0


def _setup(tmp_path: Path, port: int, n: int) -> tuple[Dispatcher, list[Notification]]:
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""\
receivers:
  - name: control_room
    mqtt: {{host: 127.0.0.1, port: {port}, topic: "city/alerts/{{receiver}}/{{domain}}/{{level}}", lang: en,
           timeout: 3s}}
route:
  receiver: control_room
""")
    routing = load_routing(routes, {})
    events = [AlertEvent(id=f"a{i}", seq=1, rule="crowd.density.high", kind=AlertKind.SAFETY, subject=f"Z{i}",
                         sensor=f"Z{i}", domain="crowd", district="SS", level=Level.ORANGE, state=AlertState.FIRING,
                         event=EventKind.FIRED, started=T, ts=T + i, value=4.2, message="4.2 p/m2")
              for i in range(n)]
    notes = [Notification.of(e, "control_room", T + 60) for e in events]
    db = tmp_path / "lifeline.db"
    with AlertStore(db) as store:
        store.commit_batch(events, notifications=notes)
    return Dispatcher(db, routing.notifiers(), clock=ManualClock(T + 60), retry_initial_s=30), notes


def test_each_notification_is_one_qos1_message_on_its_topic(mosquitto: Broker, tmp_path: Path) -> None:
    collector = Collector(mosquitto.host, mosquitto.port, ["city/alerts/#"])
    d, notes = _setup(tmp_path, mosquitto.port, 4)
    try:
        assert d.run_once() == 4
        counts = d.store.outbox_counts()
        wait_for(lambda: len(collector.on("city/alerts/")) >= 4, 10, "4 republished notifications")
    finally:
        d.stop()
        collector.close()
    assert counts == {"sent": 4}
    got = collector.on("city/alerts/")
    assert {t for t, _ in got} == {"city/alerts/control_room/crowd/orange"}
    assert sorted(p["key"] for _, p in got) == sorted(n.key for n in notes)  # each once
    assert got[0][1]["title"].startswith("[ORANGE (level 2)] alert: crowd.density.high")
    assert got[0][1]["alert"]["rule"] == "crowd.density.high"


def test_a_broker_that_cannot_be_reached_is_retried(tmp_path: Path) -> None:
    d, _ = _setup(tmp_path, free_port(), 1)
    try:
        d.run_once()
        (row,) = d.store.outbox_rows()
    finally:
        d.stop()
    assert row.state == "pending" and row.attempts == 1 and "not connected within 3 s" in row.last_error
