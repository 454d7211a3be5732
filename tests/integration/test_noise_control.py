"""Noise control and escalation end to end: readings over a real Mosquitto into the runner, notifications to
webhook receivers over real HTTP on loopback, the alert store read back.

* an hour of a value flapping across a threshold every 10 s is 3 notifications per receiver, not 360;
* a polygon-scoped construction silence (made with ``lifeline silence add``) and a weekly maintenance window
  hold notifications, while the alerts are still stored and marked;
* a red alert nobody acknowledges is re-sent and escalated; an acknowledged one is not.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lifeline.alerting.routing import load_routing
from lifeline.engine.runner import Runner
from lifeline.model import Sensor
from lifeline.sinks.store import AlertStore
from lifeline.testing import registry_of, sensors
from lifeline.testing_broker import free_port
from tests.integration.conftest import Broker
from tests.integration.helpers import REPO, Publisher, ThreadRunner, city, config, gas, wait_for
from tests.integration.test_outbox_webhook import SECRET, Receiver

pytestmark = pytest.mark.integration


def _outbox(tmp: Path) -> dict[str, int]:
    """The runner's outbox by state, read through a connection of our own."""
    with AlertStore(tmp / "lifeline.db") as store:
        return store.outbox_counts()


def _hooks(n: int) -> list[Receiver]:
    hooks = [Receiver(free_port()) for _ in range(n)]
    for h in hooks:
        h.start()
    return hooks


def test_an_hour_of_flapping_is_three_notifications_per_receiver(mosquitto: Broker, tmp_path: Path) -> None:
    """gas.methane.high has no ``for``, no hysteresis: methane crossing the orange bound every 10 s for an hour
    (a reading every 5 s) is 180 alerts, 360 transitions - 720 notifications to the two receivers without
    noise control. With it each receiver hears: the firing, "flapping", and, after 15 quiet minutes,
    "resolved"."""
    gas_hook, cc_hook = _hooks(2)
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""\
receivers:
  - name: control_centre
    webhook: {{url: "{cc_hook.url}", secret_env: HOOK_SECRET}}
  - name: gas_company
    webhook: {{url: "{gas_hook.url}", secret_env: HOOK_SECRET}}
route:
  receiver: control_centre
  routes:
    - match: {{domain: gas}}
      receiver: gas_company
      continue: true
    - match: {{domain: gas, level: ">=orange"}}
""")
    routing = load_routing(routes, {"HOOK_SECRET": SECRET})
    rules, reg = city()
    runner = ThreadRunner(Runner(config(mosquitto.port, tmp_path, client_id="it-flap", routing=routing), rules, reg))
    pub = Publisher(mosquitto.host, mosquitto.port)
    t0 = float(int(time.time()) - 3 * 3600)
    try:
        for i in range(int(5400 / 5)):  # an hour of flapping, then half an hour low
            high = i < 720 and (i * 5 // 10) % 2 == 0
            pub.publish(*gas(1, t0 + 5 * i, 25.0 if high else 1.0, seq=i))
        pub.wait_acked()
        wait_for(lambda: len(gas_hook.got) >= 3 and len(cc_hook.got) >= 3, 30, "3 notifications each")
        # everything decided is delivered (the final "resolved" was the last to be queued): nothing else is coming
        wait_for(lambda: _outbox(tmp_path).get("pending", 0) == 0 and _outbox(tmp_path).get("sent") == 6, 10,
                 "an outbox with nothing pending")
    finally:
        pub.close()
        runner.stop()
        gas_hook.stop()
        cc_hook.stop()
    with AlertStore(tmp_path / "lifeline.db") as store:
        events = store.events()
        counts = store.outbox_counts()
    before = Counter(r for e in events for r in routing.receivers_for(e))
    assert len(events) == 360 and before == {"gas_company": 360, "control_centre": 360}
    for hook in (gas_hook, cc_hook):
        got = [(b["alert"]["event"], (b["alert"].get("notice") or {}).get("kind")) for _, _, b in hook.got]  # type: ignore[index, union-attr]
        assert got == [("fired", None), ("flapping", "flapping"), ("resolved", "flapping_ended")]
        assert all(ok for _, ok, _ in hook.got)
    assert counts["sent"] == 6 and counts["flapping"] > 650  # every held transition is on record


def _maintenance_now() -> tuple[str, str]:
    """A weekly window that is open now: (day, start) in Asia/Shanghai, starting half an hour ago."""
    start = dt.datetime.now(ZoneInfo("Asia/Shanghai")) - dt.timedelta(minutes=30)
    return ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[start.weekday()], start.strftime("%H:%M")


def test_silence_maintenance_and_escalation_through_the_runner(mosquitto: Broker, tmp_path: Path) -> None:
    """Four gas sensors go red at once. gas-0001 lies inside a construction silence's polygon, gas-0003 is in
    a building under weekly maintenance: both alerts are stored and marked, their notifications recorded as
    silenced and never sent. gas-0002 and gas-0004 are sent; gas-0004 is acknowledged at once, gas-0002 is
    not, so after the red deadline it is sent again, also to the duty chief (escalate_to)."""
    gas_hook, chief_hook = _hooks(2)
    day, start = _maintenance_now()
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""\
receivers:
  - name: gas_company
    webhook: {{url: "{gas_hook.url}", secret_env: HOOK_SECRET}}
  - name: duty_chief
    webhook: {{url: "{chief_hook.url}", secret_env: HOOK_SECRET}}
route:
  receiver: gas_company
  escalate_to: [duty_chief]
ack_deadline: {{red: 6s}}
maintenance:
  - name: B12-monthly
    match: {{labels: {{building: B12}}}}
    days: [{day}]
    start: "{start}"
    duration: 2h
    by: elevator.unit.7
    reason: monthly maintenance of building B12
""")
    polygon = tmp_path / "works.geojson"
    polygon.write_text(json.dumps({"type": "Feature", "properties": {"name": "Changjiang Rd works"},
                                   "geometry": {"type": "Polygon", "coordinates": [[
                                       [117.15, 31.75], [117.25, 31.75], [117.25, 31.85], [117.15, 31.85],
                                       [117.15, 31.75]]]}}))
    rules, _ = city()
    reg = registry_of([Sensor("gas-0001", "gas", "Luyang", 117.20, 31.80),
                       Sensor("gas-0002", "gas", "Luyang", 117.40, 31.90),
                       Sensor("gas-0003", "gas", "Luyang", 117.41, 31.91, labels={"building": "B12"}),
                       Sensor("gas-0004", "gas", "Luyang", 117.42, 31.92)], sensors("water", 1))
    db = tmp_path / "lifeline.db"
    routing = load_routing(routes, {"HOOK_SECRET": SECRET})
    cfg = config(mosquitto.port, tmp_path, client_id="it-silence", routing=routing)
    runner = ThreadRunner(Runner(cfg, rules, reg))
    made = subprocess.run(
        [sys.executable, "-m", "lifeline.cli", "silence", "--db", str(db), "add", "--match", "domain=gas",
         "--polygon", str(polygon), "--for", "1h", "--by", "li.wei", "--reason", "Changjiang Rd gas main works"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    sid = made.stdout.split()[1].rstrip(":")
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        now = time.time()
        for s in (1, 2, 3, 4):
            pub.publish(*gas(s, now, 60.0, seq=1))
        pub.wait_acked()
        wait_for(lambda: len(gas_hook.got) >= 2, 15, "the two alerts outside the silence and the window")
        with AlertStore(db) as store:
            by_sensor = {a.sensor: a for a in store.list_alerts()}
            store.ack(by_sensor["gas-0004"].id, "wang.wu", "crew on the way", time.time())
        wait_for(lambda: len(chief_hook.got) >= 1, 20, "the duty chief's escalation")
        # the round that escalated gas-0002 judged gas-0004 at the same deadline: acknowledged, so no reminder
        wait_for(lambda: _outbox(tmp_path).get("pending", 0) == 0, 10, "an outbox with nothing pending")
    finally:
        pub.close()
        runner.stop()
        gas_hook.stop()
        chief_hook.stop()
    sent = [(b["alert"]["sensor"], b["alert"]["event"]) for _, _, b in gas_hook.got]  # type: ignore[index]
    assert sorted(sent[:2]) == [("gas-0002", "fired"), ("gas-0004", "fired")]
    assert {s for s, _ in sent} == {"gas-0002", "gas-0004"}
    assert [(s, e) for s, e in sent[2:]] == [("gas-0002", "overdue")] * len(sent[2:]) and len(sent) >= 3
    chief = [(b["alert"]["sensor"], b["alert"]["notice"]["step"]) for _, _, b in chief_hook.got]  # type: ignore[index]
    assert chief[0] == ("gas-0002", 1) and {s for s, _ in chief} == {"gas-0002"}
    with AlertStore(db) as store:
        alerts = {a.sensor: a for a in store.list_alerts()}
        assert set(alerts) == {"gas-0001", "gas-0002", "gas-0003", "gas-0004"}  # every alert is stored
        assert alerts["gas-0001"].suppressed is not None and sid in alerts["gas-0001"].suppressed
        assert "li.wei" in alerts["gas-0001"].suppressed
        assert alerts["gas-0003"].suppressed is not None and "maintenance B12-monthly" in alerts["gas-0003"].suppressed
        assert alerts["gas-0002"].suppressed is None and alerts["gas-0004"].state == "acknowledged"
        # reminders were queued for gas-0002 only: the acknowledged gas-0004 got none
        assert {r.alert for r in store.outbox_rows() if r.note.startswith("reminder")} == {alerts["gas-0002"].id}
        for s in ("gas-0001", "gas-0003"):
            assert {r.state for r in store.outbox_of(alerts[s].id)} == {"silenced"}
        history = [(h.event, h.actor) for h in store.history(alerts["gas-0002"].id) if h.seq is None]
        assert history[0] == ("escalated", "lifeline")
        assert [a for _, _, a, obj, _ in store.audit_log()] == ["silence.add"]


def test_a_burst_in_one_district_is_one_grouped_message(mosquitto: Broker, tmp_path: Path) -> None:
    """Five gas sensors of one district cross the yellow bound within a second: with ``group_by: [district]``
    the gas company gets one signed message listing the five, after the group wait, not five messages."""
    (hook,) = _hooks(1)
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""\
receivers:
  - name: gas_company
    webhook: {{url: "{hook.url}", secret_env: HOOK_SECRET}}
route:
  receiver: gas_company
  group_by: [district, domain]
  group_wait: 2s
""")
    rules, reg = city()
    cfg = config(mosquitto.port, tmp_path, client_id="it-group", routing=load_routing(routes, {"HOOK_SECRET": SECRET}))
    runner = ThreadRunner(Runner(cfg, rules, reg))
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        now = time.time()
        for s in range(1, 6):
            pub.publish(*gas(s, now + s * 0.1, 12.0, seq=1))
        pub.wait_acked()
        wait_for(lambda: len(hook.got) >= 1, 15, "the grouped message")
        wait_for(lambda: _outbox(tmp_path) == {"sent": 5}, 10, "every member recorded as sent")
    finally:
        pub.close()
        runner.stop()
        hook.stop()
    ((key, ok, body),) = hook.got
    alert = body["alert"]
    assert ok and key.startswith("g") and alert["event"] == "group" and alert["count"] == 5  # type: ignore[index]
    assert sorted(a["sensor"] for a in alert["alerts"]) == [f"gas-{s:04d}" for s in range(1, 6)]  # type: ignore[index]
    with AlertStore(tmp_path / "lifeline.db") as store:
        assert store.outbox_counts() == {"sent": 5}  # each member recorded as sent, by the one message
