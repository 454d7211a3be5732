"""The alert store's delivery side: silences (audited), approval, escalation steps, response clocks, and the
upgrade of a schema-1 store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lifeline.alerting.escalation import Escalator
from lifeline.alerting.matchers import Match
from lifeline.alerting.routing import Routing, load_routing
from lifeline.clock import ManualClock
from lifeline.errors import StoreError
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import Notification
from lifeline.sinks.store import AlertStore

T0 = 1_764_403_200.0


def _ev(seq: int, event: EventKind, level: Level, ts: float, alert: str = "A1", owner: str = "Hefei Gas") -> AlertEvent:
    state = AlertState.RESOLVED if event == EventKind.RESOLVED else AlertState.FIRING
    return AlertEvent(id=alert, seq=seq, rule="gas.methane.high", kind=AlertKind.SAFETY, subject="gas-0001",
                      sensor="gas-0001", domain="gas", district="Luyang", level=level, state=state, event=event,
                      started=T0, ts=ts, value=25.0, message="methane 25 %LEL", owner=owner)


def test_silences_are_audited_and_end_early_on_record(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "s.db") as store:
        v0 = store.silences_version()
        w = store.silence_add(Match((("domain", "gas"),), rule_prefix="gas."), T0, T0 + 3600, "li.wei", "roadworks",
                              T0 - 5, polygon=[(117.0, 31.0), (117.5, 31.0), (117.5, 32.0)])
        assert w.id.startswith("S-") and w.polygon is not None and w.match == Match((("domain", "gas"),),
                                                                                    rule_prefix="gas.")
        assert store.silences_version() == v0 + 1
        assert [s.id for s in store.silences(at=T0 + 10)] == [w.id]
        ended = store.silence_expire(w.id, "zhang.san", "works finished early", T0 + 600)
        assert ended.ends == T0 + 600 and ended.extra["expired_by"] == "zhang.san"
        assert store.silences(at=T0 + 700) == [] and store.silences() == []
        assert [s.id for s in store.silences(include_expired=True)] == [w.id]  # still on record
        assert [(a, act, obj) for _, a, act, obj, _ in store.audit_log()] == [
            ("zhang.san", "silence.expire", w.id), ("li.wei", "silence.add", w.id)]
        with pytest.raises(StoreError, match="already ended"):
            store.silence_expire(w.id, "x", "", T0 + 700)
        with pytest.raises(StoreError, match="who made it and why"):
            store.silence_add(Match(), T0, T0 + 1, "", "r", T0)
        with pytest.raises(StoreError, match="must end after"):
            store.silence_add(Match(), T0, T0, "a", "r", T0)


def test_approval_releases_or_rejects_a_held_warning_with_who_and_why(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "s.db") as store:
        e = _ev(1, EventKind.FIRED, Level.RED, T0)
        held = Notification("k1", "public_warning", e.id, 1, T0, e.to_dict(), "awaiting_approval", "needs approval")
        other = Notification("k2", "public_warning", e.id, 1, T0, e.to_dict(), "awaiting_approval", "needs approval")
        store.commit_batch([e], notifications=[held, other])
        assert store.outbox_due(T0 + 10) == []  # not sent before a supervisor says so
        row = store.outbox_decide("k1", True, "chen.jie", "confirmed on site", T0 + 60)
        assert row.state == "pending" and "approved by chen.jie" in row.note
        assert [n.key for n in store.outbox_due(T0 + 61)] == ["k1"]
        assert store.outbox_decide("k2", False, "chen.jie", "sensor fault", T0 + 70).state == "rejected"
        with pytest.raises(StoreError, match="not awaiting approval"):
            store.outbox_decide("k2", True, "x", "y", T0 + 80)
        actions = [(h.event, h.actor) for h in store.history(e.id) if h.seq is None]
        assert actions == [("approved", "chen.jie"), ("rejected", "chen.jie")]


ROUTES = """\
receivers:
  - name: gas_company
    webhook: {url: "http://127.0.0.1:9/gas"}
  - name: duty_chief
    webhook: {url: "http://127.0.0.1:9/chief"}
  - name: city_leader
    webhook: {url: "http://127.0.0.1:9/leader"}
route:
  receiver: gas_company
  escalate_to: [duty_chief, city_leader]
ack_deadline: {red: 5m, orange: 15m}
"""


def _routing(tmp_path: Path) -> Routing:
    p = tmp_path / "routes.yaml"
    p.write_text(ROUTES)
    return load_routing(p, env={})


def test_an_unacknowledged_red_escalates_step_by_step_once_each_and_stops_on_ack(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    esc = Escalator(_routing(tmp_path), clock=clock)
    with AlertStore(tmp_path / "s.db") as store:
        store.commit_batch([_ev(1, EventKind.FIRED, Level.ORANGE, T0), _ev(2, EventKind.ESCALATED, Level.RED, T0 + 60)])
        clock.advance(60 + 299)
        assert esc.run_once(store) == 0  # 4 min 59 s at red: not yet
        clock.advance(1)
        assert esc.run_once(store) == 1 and esc.run_once(store) == 0  # step 1, once
        rows = store.outbox_of("A1")
        assert sorted(r.receiver for r in rows) == ["duty_chief", "gas_company"]
        assert {r.state for r in rows} == {"pending"} and all("reminder 1" in r.note for r in rows)
        clock.advance(300)
        assert esc.run_once(store) == 1  # step 2: the next in the chain
        assert sorted(r.receiver for r in store.outbox_of("A1")) == ["city_leader", "duty_chief", "duty_chief",
                                                                     "gas_company", "gas_company"]
        assert len({r.key for r in store.outbox_of("A1")}) == 5
        store.ack("A1", "wang.wu", "crew sent", clock.now())
        clock.advance(3600)
        assert esc.run_once(store) == 0  # acknowledged: no more
        history = [(h.event, h.actor) for h in store.history("A1") if h.seq is None]
        assert history == [("escalated", "lifeline"), ("escalated", "lifeline"), ("acknowledged", "wang.wu")]


def test_escalation_steps_stop_after_the_chain_and_two_reminders_and_skip_held_alerts(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    esc = Escalator(_routing(tmp_path), clock=clock)
    with AlertStore(tmp_path / "s.db") as store:
        store.commit_batch([_ev(1, EventKind.FIRED, Level.RED, T0)])
        store.commit_batch([_ev(1, EventKind.FIRED, Level.RED, T0, alert="HELD")],
                           marks={"HELD": "silenced: silence S-1 by li.wei"})
        taken = 0
        for _ in range(12):
            clock.advance(300)
            taken += esc.run_once(store)
        assert taken == 4  # a chain of two, then two more reminders
        assert store.outbox_of("HELD") == []
        assert store.get("HELD").suppressed == "silenced: silence S-1 by li.wei"  # type: ignore[union-attr]


def test_response_times_per_department(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "s.db") as store:
        for i, (owner, ack_after, resolve_after) in enumerate([("Hefei Gas", 120, 1800), ("Hefei Gas", 360, None),
                                                              ("Hefei Water", None, 600)]):
            a = f"A{i}"
            store.commit_batch([_ev(1, EventKind.FIRED, Level.ORANGE, T0, alert=a, owner=owner)])
            if ack_after is not None:
                store.ack(a, "op", "", T0 + ack_after)
            if resolve_after is not None:
                store.commit_batch([_ev(2, EventKind.RESOLVED, Level.ORANGE, T0 + resolve_after, alert=a,
                                        owner=owner)])
        rows = {r["department"]: r for r in store.response_times(since=T0 - 1)}
        gas, water = rows["Hefei Gas"], rows["Hefei Water"]
        assert (gas["alerts"], gas["acknowledged"], gas["resolved"]) == (2, 2, 1)
        assert gas["ack_median_s"] == 240 and gas["ack_p90_s"] == pytest.approx(336)
        assert gas["resolve_median_s"] == 1800
        assert (water["acknowledged"], water["ack_median_s"], water["resolve_median_s"]) == (0, None, 600)
        assert store.response_times(since=T0 + 1) == []


V1_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
CREATE TABLE alerts (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    sensor TEXT NOT NULL, domain TEXT NOT NULL, district TEXT NOT NULL, level TEXT NOT NULL,
    level_n INTEGER NOT NULL, state TEXT NOT NULL, last_event TEXT NOT NULL, started REAL NOT NULL,
    updated REAL NOT NULL, value REAL, message TEXT NOT NULL, title TEXT NOT NULL, owner TEXT NOT NULL,
    playbook TEXT NOT NULL, acked_by TEXT, acked_at REAL, ack_reason TEXT,
    resolved_by TEXT, resolved_at REAL
);
CREATE TABLE outbox (
    key TEXT PRIMARY KEY, receiver TEXT NOT NULL, alert TEXT NOT NULL, seq INTEGER NOT NULL, created REAL NOT NULL,
    payload BLOB NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, next_at REAL NOT NULL,
    last_error TEXT NOT NULL, done_at REAL
);
INSERT INTO outbox VALUES ('old', 'gas', 'A0', 1, 1.0, X'7B7D', 'sent', 1, 1.0, '', 2.0);
"""


def test_a_schema_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as c:
        c.executescript(V1_TABLES)
    with AlertStore(db) as store:
        (old,) = store.outbox_rows()
        assert (old.key, old.state, old.note) == ("old", "sent", "")
        store.commit_batch([_ev(1, EventKind.FIRED, Level.RED, T0)], marks={"A1": "inhibited: x"})
        assert store.get("A1").suppressed == "inhibited: x"  # type: ignore[union-attr]
    with AlertStore(db) as store:  # and opens again as schema 2
        assert store.get("A1") is not None
    assert sqlite3.connect(db).execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("2",)


def test_the_deadline_of_a_late_alert_runs_from_when_it_was_queued(tmp_path: Path) -> None:
    """A sensor that uploads an hour of buffered readings at once: its red alert's event time is an hour old,
    but nobody could acknowledge it before it arrived - the deadline runs from when it was queued."""
    clock = ManualClock(T0)
    esc = Escalator(_routing(tmp_path), clock=clock)
    with AlertStore(tmp_path / "s.db") as store:
        e = _ev(1, EventKind.FIRED, Level.RED, T0 - 3600)
        store.commit_batch([e], notifications=[Notification.of(e, "gas_company", T0)])
        assert esc.run_once(store) == 0
        clock.advance(299)
        assert esc.run_once(store) == 0
        clock.advance(1)
        assert esc.run_once(store) == 1
        assert [(r.receiver, r.note.split(":")[0]) for r in store.outbox_of("A1")] == [
            ("gas_company", ""), ("gas_company", "reminder 1"), ("duty_chief", "reminder 1")]
