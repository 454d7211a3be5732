"""Noise control: flapping, bounces, silences and maintenance windows, inhibition, approval - and the same
decisions however the stream is cut, advanced, snapshotted and restored."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeline.alerting.matchers import Match
from lifeline.alerting.policy import Decisions, Policy
from lifeline.alerting.routing import Routing, RoutingError, load_routing
from lifeline.alerting.silences import Window
from lifeline.engine import Engine
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level, Sensor
from lifeline.rules.model import RuleSet
from lifeline.testing import reading, registry_of, threshold_rule

T0 = 1_764_403_200.0  # 2025-11-29 08:00 UTC, a Saturday

ROUTES = """\
receivers:
  - name: control_centre
    webhook: {url: "http://127.0.0.1:9/cc"}
  - name: gas_company
    webhook: {url: "http://127.0.0.1:9/gas"}
  - name: public_warning
    approval: [red, orange]
    webhook: {url: "http://127.0.0.1:9/public"}
route:
  receiver: control_centre
  routes:
    - match: {domain: gas}
      receiver: gas_company
      continue: true
    - match: {domain: gas, level: ">=orange"}
      receiver: control_centre
"""


def _routing(tmp_path: Path, extra: str = "", routes: str = ROUTES) -> Routing:
    p = tmp_path / "routes.yaml"
    p.write_text(routes + extra)
    return load_routing(p, env={})


def _ev(seq: int, event: EventKind, level: Level, ts: float, *, alert: str = "A1", rule: str = "gas.methane.high",
        sensor: str = "gas-0001", kind: AlertKind = AlertKind.SAFETY, district: str = "Luyang") -> AlertEvent:
    state = AlertState.RESOLVED if event == EventKind.RESOLVED else AlertState.FIRING
    return AlertEvent(id=alert, seq=seq, rule=rule, kind=kind, subject=sensor, sensor=sensor, domain="gas",
                      district=district, level=level, state=state, event=event, started=ts, ts=ts, value=1.0,
                      message="m")


def _sent(d: Decisions) -> Counter[str]:
    return Counter(n.receiver for n in d.notifications if n.state == "pending")


def _flapping_hour(period_s: float = 10.0, step_s: float = 5.0, hours: float = 1.0) -> list[AlertEvent]:
    """The real engine on an undamped threshold rule (no for, no hysteresis): methane crosses the orange bound
    every ``period_s`` for an hour, read every ``step_s``, then stays low."""
    eng = Engine(RuleSet((threshold_rule(),)), registry_of([Sensor("gas-0001", "gas", "Luyang", 117.2, 31.8,
                                                                   interval_s=step_s)]))
    out: list[AlertEvent] = []
    n = int(hours * 3600 / step_s)
    for i in range(n + int(1800 / step_s)):
        high = i < n and int(i * step_s // period_s) % 2 == 0
        out.extend(eng.process([reading("gas-0001", 25.0 if high else 1.0, T0 + i * step_s)]).events)
    return out


def test_a_value_flapping_every_10_s_for_an_hour_is_three_notifications_per_receiver(tmp_path: Path) -> None:
    """The issue's scenario. Before noise control every transition goes to every routed receiver (hundreds);
    after: the firing, one "flapping" notice, and the final "resolved" once it has been quiet."""
    routing = _routing(tmp_path)
    events = _flapping_hour()
    assert len(events) == 360  # 180 alerts, each fired and resolved
    before = Counter(r for e in events for r in routing.receivers_for(e))
    assert before == {"gas_company": 360, "control_centre": 360}
    policy = Policy(routing)
    d = policy.process(events, created=0.0)
    d.notifications.extend(policy.advance(events[-1].ts + 3600, created=0.0).notifications)
    after = _sent(d)
    assert after == {"gas_company": 3, "control_centre": 3}
    kinds = [(n.payload["event"], (n.payload.get("notice") or {}).get("kind")) for n in d.notifications
             if n.state == "pending" and n.receiver == "gas_company"]
    assert kinds == [("fired", None), ("flapping", "flapping"), ("resolved", "flapping_ended")]
    held = Counter(n.state for n in d.notifications if n.receiver == "gas_company")
    assert held["flapping"] > 340  # every held transition is on record, with its reason
    assert len({n.key for n in d.notifications}) == len(d.notifications)


def test_an_escalation_is_never_held_while_flapping(tmp_path: Path) -> None:
    routing = _routing(tmp_path)
    policy = Policy(routing)
    out: list[str] = []
    for i in range(10):  # orange flapping: fire / resolve every 10 s
        a = f"A{i}"
        out += [f"{n.receiver}:{n.payload['event']}:{n.payload['level']}:{n.state}" for n in policy.process(
            [_ev(1, EventKind.FIRED, Level.ORANGE, T0 + 20 * i, alert=a),
             _ev(2, EventKind.RESOLVED, Level.ORANGE, T0 + 20 * i + 10, alert=a)], 0.0).notifications]
    d = policy.process([_ev(1, EventKind.FIRED, Level.ORANGE, T0 + 400, alert="B"),
                        _ev(2, EventKind.ESCALATED, Level.RED, T0 + 405, alert="B")], 0.0)
    red = [n for n in d.notifications if n.payload["level"] == "red"]
    assert {(n.receiver, n.state) for n in red} == {("gas_company", "pending"), ("control_centre", "pending")}
    assert out[:2] == ["gas_company:fired:orange:pending", "control_centre:fired:orange:pending"]
    assert sum(x.endswith(":pending") for x in out) == 4  # the firing and the flapping notice, to each
    assert sum(x.endswith(":flapping") for x in out) > 20


def test_a_bounce_within_the_hold_is_one_story(tmp_path: Path) -> None:
    """Resolved, then fired again 30 s later: the receivers heard it fire once; the final resolution is sent
    once the hold (2 min) has passed without a re-fire - released by the engine's clock."""
    policy = Policy(_routing(tmp_path))
    d1 = policy.process([_ev(1, EventKind.FIRED, Level.YELLOW, T0), _ev(2, EventKind.RESOLVED, Level.YELLOW, T0 + 60),
                         _ev(1, EventKind.FIRED, Level.YELLOW, T0 + 90, alert="A2")], 0.0)
    assert _sent(d1) == {"gas_company": 1}
    notes = sorted(n.note for n in d1.notifications if n.state == "suppressed")
    assert notes == ["bounced: fired again 30 s later (alert A2)",
                     "continues the alert its receivers heard of (30 s gap)"]
    d2 = policy.process([_ev(2, EventKind.RESOLVED, Level.YELLOW, T0 + 200, alert="A2")], 0.0)
    assert _sent(d2) == {}  # held: a re-fire within 2 min would be the same story
    assert _sent(policy.advance(T0 + 319, 0.0)) == {}
    d3 = policy.advance(T0 + 320, 0.0)
    assert [(n.receiver, n.alert, n.payload["event"]) for n in d3.notifications] == [("gas_company", "A2", "resolved")]
    assert _sent(policy.advance(T0 + 9999, 0.0)) == {}  # released once


def test_a_worse_refire_within_the_hold_is_news(tmp_path: Path) -> None:
    policy = Policy(_routing(tmp_path))
    d = policy.process([_ev(1, EventKind.FIRED, Level.YELLOW, T0), _ev(2, EventKind.RESOLVED, Level.YELLOW, T0 + 60),
                        _ev(1, EventKind.FIRED, Level.RED, T0 + 90, alert="A2")], 0.0)
    assert [(n.receiver, n.payload["level"], n.state) for n in d.notifications if n.alert == "A2"] == [
        ("gas_company", "red", "pending"), ("control_centre", "red", "pending")]


def test_silence_by_matchers_and_by_polygon_and_time(tmp_path: Path) -> None:
    """A construction silence over a polygon: sensors inside are silenced (recorded, marked), sensors outside
    and events after the silence ends are sent."""
    square = ((117.0, 31.0), (117.5, 31.0), (117.5, 32.0), (117.0, 32.0))
    where = {"gas-in": (117.2, 31.5), "gas-out": (118.0, 31.5)}
    works = Window("S-1", Match((("domain", "gas"),)), "li.wei", "roadworks on Changjiang Rd", T0, T0 + 3600,
                   polygon=square)
    policy = Policy(_routing(tmp_path), position=where.get, silences=[works])
    d = policy.process([_ev(1, EventKind.FIRED, Level.YELLOW, T0 + 10, alert="IN", sensor="gas-in"),
                        _ev(1, EventKind.FIRED, Level.YELLOW, T0 + 10, alert="OUT", sensor="gas-out"),
                        _ev(1, EventKind.FIRED, Level.YELLOW, T0 + 3600, alert="LATE", sensor="gas-in",
                            rule="gas.other")], 0.0)
    states = {(n.alert, n.state) for n in d.notifications}
    assert states == {("IN", "silenced"), ("OUT", "pending"), ("LATE", "pending")}
    note = next(n.note for n in d.notifications if n.alert == "IN")
    assert "S-1" in note and "li.wei" in note and "roadworks" in note and "until 2025-11-29T09:00:00.000Z" in note
    assert d.marks["IN"].startswith("silenced: silence S-1") and d.marks["OUT"] == ""
    # its "resolved" is not news for anyone
    r = policy.process([_ev(2, EventKind.RESOLVED, Level.YELLOW, T0 + 20, alert="IN", sensor="gas-in")], 0.0)
    assert {n.state for n in r.notifications} == {"suppressed"}


MAINTENANCE = """\
maintenance:
  - name: B12-monthly
    match: {domain: gas, labels: {building: B12}}
    days: [sat]
    start: "15:30"
    duration: 2h
    timezone: Asia/Shanghai
    by: elevator.unit.7
    reason: monthly maintenance of building B12
"""


def test_a_weekly_maintenance_window_in_local_time(tmp_path: Path) -> None:
    policy = Policy(_routing(tmp_path, MAINTENANCE), labels=lambda s: {"building": "B12"} if s == "gas-0001" else {})
    cst = ZoneInfo("Asia/Shanghai")
    at = [dt.datetime(2025, 11, 29, h, m, tzinfo=cst).timestamp() for h, m in ((15, 29), (15, 30), (17, 29), (17, 30))]
    at.append(dt.datetime(2025, 12, 6, 16, 0, tzinfo=cst).timestamp())  # the next Saturday
    got = []
    for i, t in enumerate(at):
        d = policy.process([_ev(1, EventKind.FIRED, Level.YELLOW, t, alert=f"M{i}", rule=f"gas.r{i}")], 0.0)
        got.append({n.state for n in d.notifications})
    assert got == [{"pending"}, {"silenced"}, {"silenced"}, {"pending"}, {"silenced"}]
    other = policy.process([_ev(1, EventKind.FIRED, Level.YELLOW, at[1], alert="X", sensor="gas-0002")], 0.0)
    assert {n.state for n in other.notifications} == {"pending"}  # another building


INHIBIT = """\
inhibit:
  - name: sensor-offline
    source: {kind: nodata}
    target: {kind: safety}
    equal: [sensor]
  - name: district-outage
    source: {kind: nodata}
    target: {kind: nodata}
    equal: [district, domain]
    min_sources: 3
  - name: red-over-yellow
    source: {level: red}
    target: {level: yellow}
    equal: [sensor]
"""


def test_inhibition_offline_sensor_district_outage_and_red_over_yellow(tmp_path: Path) -> None:
    policy = Policy(_routing(tmp_path, INHIBIT))

    def states(*events: AlertEvent) -> list[str]:
        return [f"{n.alert}:{n.state}" for n in policy.process(list(events), 0.0).notifications
                if n.receiver == "gas_company"]

    nodata = AlertKind.NODATA
    assert states(_ev(1, EventKind.FIRED, Level.BLUE, T0, alert="N1", rule="gas.sensor.nodata", kind=nodata)) == [
        "N1:pending"]
    assert states(_ev(1, EventKind.FIRED, Level.ORANGE, T0 + 1, alert="S1")) == ["S1:inhibited"]
    # two more sensors of the district go silent: still news; from the fourth on it is the outage
    for i in (2, 3):
        assert states(_ev(1, EventKind.FIRED, Level.BLUE, T0 + i, alert=f"N{i}", rule="gas.sensor.nodata",
                          sensor=f"gas-000{i}", kind=nodata)) == [f"N{i}:pending"]
    assert states(_ev(1, EventKind.FIRED, Level.BLUE, T0 + 4, alert="N4", rule="gas.sensor.nodata",
                      sensor="gas-0004", kind=nodata)) == ["N4:inhibited"]
    assert states(_ev(1, EventKind.FIRED, Level.BLUE, T0 + 4, alert="NX", rule="gas.sensor.nodata",
                      sensor="gas-0009", kind=nodata, district="Shushan")) == ["NX:pending"]
    # red over yellow on another sensor
    assert states(_ev(1, EventKind.FIRED, Level.RED, T0 + 5, alert="R", rule="gas.a", sensor="gas-0007")) == [
        "R:pending"]
    assert states(_ev(1, EventKind.FIRED, Level.YELLOW, T0 + 6, alert="Y", rule="gas.b", sensor="gas-0007")) == [
        "Y:inhibited"]
    note = next(n.note for n in policy.process([_ev(1, EventKind.FIRED, Level.YELLOW, T0 + 7, alert="Y2", rule="gas.c",
                                                    sensor="gas-0007")], 0.0).notifications)
    assert note == "inhibited by red-over-yellow: gas.a on gas-0007 (R)"
    # the red resolves: a yellow is news again
    states(_ev(2, EventKind.RESOLVED, Level.RED, T0 + 8, alert="R", rule="gas.a", sensor="gas-0007"))
    assert states(_ev(1, EventKind.FIRED, Level.YELLOW, T0 + 9, alert="Y3", rule="gas.d", sensor="gas-0007")) == [
        "Y3:pending"]


def test_red_and_orange_to_an_approval_receiver_wait_for_a_supervisor(tmp_path: Path) -> None:
    routing = _routing(tmp_path, routes=ROUTES.replace('''    - match: {domain: gas, level: ">=orange"}
      receiver: control_centre''', '''    - match: {domain: gas, level: ">=orange"}
      receiver: public_warning'''))
    d = Policy(routing).process([_ev(1, EventKind.FIRED, Level.YELLOW, T0), _ev(2, EventKind.ESCALATED, Level.RED,
                                                                               T0 + 5)], 0.0)
    assert [(n.receiver, n.payload["level"], n.state) for n in d.notifications] == [
        ("gas_company", "yellow", "pending"), ("gas_company", "red", "pending"),
        ("public_warning", "red", "awaiting_approval")]


def test_routing_file_noise_sections_report_file_line_col(tmp_path: Path) -> None:
    bad = """\
noise: {resolve_hold: soon, flapping: {changes: 1}}
inhibit:
  - source: {kind: offline}
    target: {kind: safety}
    equal: [asset]
maintenance:
  - name: w
    days: [someday]
    start: "25:00"
    duration: 2h
    timezone: Mars/Olympus
    by: me
    reason: x
ack_deadline: {red: 0s, purple: 5m}
"""
    with pytest.raises(RoutingError) as exc:
        _routing(tmp_path, bad)
    text = str(exc.value)
    for where, what in (("17:23", "resolve_hold"), ("17:49", "at least 2"), ("19:20", "unknown kind 'offline'"),
                        ("21:13", "unknown attribute 'asset'"), ("24:12", "unknown day 'someday'"),
                        ("25:12", "'02:00'"), ("27:15", "unknown time zone"), ("30:21", "positive"),
                        ("30:25", "unknown key 'purple'")):
        assert f"routes.yaml:{where}" in text and what in text, (where, what, text)


def _random_events(seed: int) -> list[AlertEvent]:
    """Several subjects firing, escalating and resolving at random, some bouncing, some flapping."""
    rng = random.Random(seed)
    out: list[AlertEvent] = []
    t = T0
    open_: dict[str, tuple[str, int, Level]] = {}
    n = 0
    for _ in range(400):
        t += rng.choice([1, 5, 10, 30, 60, 200])
        subject = f"gas-000{rng.randrange(4)}"
        kind = AlertKind.NODATA if subject == "gas-0003" else AlertKind.SAFETY
        if subject in open_:
            alert, seq, level = open_[subject]
            if rng.random() < 0.5:
                out.append(_ev(seq + 1, EventKind.RESOLVED, level, t, alert=alert, sensor=subject, kind=kind))
                del open_[subject]
            else:
                new = Level(rng.randrange(1, 5))
                ev = EventKind.ESCALATED if new > level else EventKind.DEESCALATED
                if new != level:
                    out.append(_ev(seq + 1, ev, new, t, alert=alert, sensor=subject, kind=kind))
                    open_[subject] = (alert, seq + 1, new)
        else:
            n += 1
            level = Level(rng.randrange(1, 5))
            out.append(_ev(1, EventKind.FIRED, level, t, alert=f"A{n}", sensor=subject, kind=kind))
            open_[subject] = (f"A{n}", 1, level)
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 399), max_size=8))
def test_same_decisions_however_the_stream_is_cut_advanced_and_restored(tmp_path_factory: pytest.TempPathFactory,
                                                                        seed: int, cuts: list[int]) -> None:
    """Determinism: one pass over the events gives the same outbox rows (key, receiver, state) as batches cut
    anywhere, with the clock advanced between them and the state snapshotted and restored into a new policy."""
    tmp = tmp_path_factory.mktemp("p")
    routing = _routing(tmp, INHIBIT + "noise: {resolve_hold: 2m, flapping: {window: 10m, changes: 4, quiet: 5m}}\n")
    works = Window("S-9", Match((("district", "Luyang"),)), "ops", "works", T0 + 3000, T0 + 6000)
    events = _random_events(seed)

    def rows(d: Decisions) -> set[tuple[str, str, str]]:
        return {(n.key, n.receiver, n.state) for n in d.notifications}

    one = Policy(routing, silences=[works])
    want = rows(one.process(events, 0.0)) | rows(one.advance(events[-1].ts + 86_400, 0.0))
    got: set[tuple[str, str, str]] = set()
    p = Policy(routing, silences=[works])
    start = 0
    for cut in [*sorted({c for c in cuts if c < len(events)}), len(events)]:
        got |= rows(p.process(events[start:cut], 0.0))
        if start < cut:
            got |= rows(p.advance(events[cut - 1].ts - 30, 0.0))  # the engine's clock, a little behind
        snap = p.snapshot()
        p = Policy(routing, silences=[works])
        p.restore(snap)
        start = cut
    got |= rows(p.advance(events[-1].ts + 86_400, 0.0))
    assert got == want
    assert sum(1 for _, _, s in want if s == "pending") < sum(len(routing.receivers_for(e)) for e in events)
