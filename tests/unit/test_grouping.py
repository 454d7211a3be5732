"""Grouping (group_by, group wait / interval) at the dispatcher and repeat intervals, on a manual clock.

The channel here is a recording ``Notifier`` (the dispatcher's contract, nothing external to stand in for);
the same path over a real webhook receiver is in tests/integration/test_noise_control.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.alerting.escalation import Escalator
from lifeline.alerting.outbox import Dispatcher
from lifeline.alerting.policy import Policy
from lifeline.alerting.routing import Routing, RoutingError, load_routing
from lifeline.clock import ManualClock
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import DeliveryError, Notification, Notifier
from lifeline.notifiers.templates import render
from lifeline.sinks.store import AlertStore

T0 = 1_764_403_200.0

ROUTES = """\
receivers:
  - name: control_centre
    webhook: {url: "http://127.0.0.1:9/cc"}
  - name: gas_company
    webhook: {url: "http://127.0.0.1:9/gas"}
route:
  receiver: control_centre
  group_by: [district]
  group_wait: 30s
  group_interval: 5m
  routes:
    - match: {domain: gas}
      receiver: gas_company
      group_by: [district, rule]
      repeat_interval: 1h
      continue: true
    - match: {level: ">=orange"}
      group_by: []
"""


class Recording(Notifier):
    kind = "recording"

    def __init__(self) -> None:
        self.got: list[Notification] = []
        self.fail = 0

    def send(self, n: Notification) -> None:
        if self.fail:
            self.fail -= 1
            raise DeliveryError("receiver down")
        self.got.append(n)


def _routing(tmp_path: Path, text: str = ROUTES) -> Routing:
    p = tmp_path / "routes.yaml"
    p.write_text(text)
    return load_routing(p, env={})


def _ev(i: int, level: Level = Level.YELLOW, district: str = "Luyang", ts: float = T0, rule: str = "gas.methane.high",
        event: EventKind = EventKind.FIRED, seq: int = 1) -> AlertEvent:
    state = AlertState.RESOLVED if event == EventKind.RESOLVED else AlertState.FIRING
    return AlertEvent(id=f"A{i}", seq=seq, rule=rule, kind=AlertKind.SAFETY, subject=f"gas-{i:04d}",
                      sensor=f"gas-{i:04d}", domain="gas", district=district, level=level, state=state, event=event,
                      started=T0, ts=ts, value=float(i), message=f"CH4 {i} %LEL", title="Methane")


def test_group_settings_inherit_down_the_tree_and_problems_are_reported(tmp_path: Path) -> None:
    r = _routing(tmp_path)
    g = r.groupings_for(_ev(1))
    assert g["gas_company"][0] == "route.routes[0]|district=Luyang,rule=gas.methane.high"
    assert (g["gas_company"][1].wait_s, g["gas_company"][1].interval_s, g["gas_company"][1].repeat_s) == (30, 300,
                                                                                                        3600)
    red = r.groupings_for(_ev(1, Level.RED))
    assert red["control_centre"][0] == ""  # group_by: [] - a red goes out alone
    with pytest.raises(RoutingError) as exc:
        _routing(tmp_path, ROUTES.replace("group_by: [district]", "group_by: [asset]").replace(
            "group_interval: 5m", "group_interval: 0s"))
    assert "route.group_by[0]: unknown attribute 'asset'" in str(exc.value)
    assert "route.group_interval: must be positive" in str(exc.value)


def test_a_burst_goes_out_as_one_message_after_group_wait_then_updates_at_the_interval(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    routing = _routing(tmp_path)
    db = tmp_path / "l.db"
    rec = Recording()
    d = Dispatcher(db, {"gas_company": rec, "control_centre": Recording()}, clock=clock)
    policy = Policy(routing)
    with AlertStore(db) as store:
        burst = [_ev(i) for i in range(1, 6)]
        decided = policy.process(burst, clock.now())
        store.commit_batch(burst, notifications=decided.notifications)
    d.run_once()
    assert rec.got == []  # waiting for the rest of the burst
    clock.advance(29)
    d.run_once()
    assert rec.got == []
    clock.advance(1)
    d.run_once()
    (msg,) = rec.got
    assert msg.payload["event"] == "group" and msg.payload["count"] == 5
    assert msg.payload["group"] == {"district": "Luyang", "rule": "gas.methane.high"}
    assert [a["id"] for a in msg.payload["alerts"]] == ["A1", "A2", "A3", "A4", "A5"]
    assert sorted(msg.payload["keys"]) == sorted(n.key for n in decided.notifications if n.receiver == "gas_company")
    assert render(msg.payload, "en").title == "[YELLOW (level 3)] 5 alerts: Luyang / gas.methane.high"
    # one more a minute later waits for the group interval (5 min after the last message)
    with AlertStore(db) as store:
        clock.advance(60)
        late = [_ev(6, ts=T0 + 90)]
        store.commit_batch(late, notifications=policy.process(late, clock.now()).notifications)
        clock.advance(150)
        d.run_once()
        assert len(rec.got) == 1
        clock.advance(90)  # 300 s after the first message
        d.run_once()
        assert len(rec.got) == 2 and rec.got[1].payload["count"] == 1
        assert store.outbox_counts() == {"sent": 6}  # every member (a yellow goes to the gas company only)
    d.stop()


def test_a_failed_group_message_is_retried_whole_with_the_same_key(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    db = tmp_path / "l.db"
    rec = Recording()
    rec.fail = 1
    d = Dispatcher(db, {"gas_company": rec, "control_centre": Recording()}, clock=clock, retry_initial_s=10)
    policy = Policy(_routing(tmp_path))
    with AlertStore(db) as store:
        burst = [_ev(i) for i in range(1, 4)]
        store.commit_batch(burst, notifications=policy.process(burst, clock.now()).notifications)
    clock.advance(30)
    d.run_once()
    assert rec.got == []
    clock.advance(10)
    d.run_once()
    (msg,) = rec.got
    assert msg.payload["count"] == 3
    first_key = msg.key
    d.stop()
    assert first_key.startswith("g")


def test_repeat_interval_resends_an_open_alert_once_per_period(tmp_path: Path) -> None:
    """An acknowledged alert is repeated every hour; an unacknowledged one gets its deadline reminders first
    (yellow: every hour, three of them with no escalation chain) and the repeats after."""
    clock = ManualClock(T0)
    routing = _routing(tmp_path)
    esc = Escalator(routing, clock=clock)
    with AlertStore(tmp_path / "l.db") as store:
        store.commit_batch([_ev(1), _ev(2, district="Shushan")])
        store.ack("A2", "op", "crew on site", T0 + 10)

        def notes(alert: str) -> list[str]:
            return [r.note.split(":")[0] for r in store.outbox_rows() if r.alert == alert]

        clock.advance(3599)
        assert esc.run_once(store) == 0
        clock.advance(1)
        assert esc.run_once(store) == 2 and esc.run_once(store) == 0  # A2's repeat, A1's first reminder
        assert notes("A1") == ["reminder 1"] and notes("A2") == ["repeat 1"]
        clock.advance(3600 * 3)  # the engine was down for hours: one repeat, the current one, not three
        esc.run_once(store)
        esc.run_once(store)
        assert notes("A2") == ["repeat 1", "repeat 4"]
        assert notes("A1") == ["reminder 1", "reminder 3", "repeat 4"]  # the last step, not every one missed
        store.commit_batch([_ev(1, event=EventKind.RESOLVED, seq=2, ts=T0 + 5 * 3600)])
        clock.advance(3600)
        assert esc.run_once(store) == 1  # the resolved one is done
        assert notes("A2") == ["repeat 1", "repeat 4", "repeat 5"]
