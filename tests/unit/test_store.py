"""AlertStore: idempotent batches, current-alert state, operator actions, checkpoint atomicity."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.engine import Engine
from lifeline.errors import StoreError
from lifeline.model import AlertEvent, Level
from lifeline.rules.model import RuleSet
from lifeline.sinks.jsonl import JsonlSink, read_events
from lifeline.sinks.store import AlertStore
from lifeline.testing import reading, registry_of, sensors, threshold_rule

T0 = 1_764_403_200.0


def _events(values: list[float], sensor: str = "gas-0000") -> list[AlertEvent]:
    eng = Engine(RuleSet((threshold_rule(),)), registry_of(sensors("gas", 2)))
    return eng.process([reading(sensor, v, T0 + i) for i, v in enumerate(values)]).events


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(tmp_path / "a.db")


def test_store_reprocessed_batch_never_duplicates(store: AlertStore) -> None:
    """Committing the same events twice stores them once and reports 0 new the second time."""
    evs = _events([1, 6, 12, 55, 25, 3])
    assert store.commit_batch(evs) == 5
    assert store.commit_batch(evs) == 0
    assert store.count_events() == 5
    assert [e.to_dict() for e in store.events()] == [e.to_dict() for e in sorted(evs, key=lambda e: e.seq)]


def test_store_current_alert_follows_latest_seq(store: AlertStore) -> None:
    """The current row has the latest level/state; an older event replayed later does not move it back."""
    evs = _events([6, 12, 55])
    store.commit_batch(evs)
    row = store.get(evs[0].id)
    assert row is not None and row.level == Level.RED and row.state == "firing" and row.seq == 3
    store.commit_batch(evs[:1])
    row = store.get(evs[0].id)
    assert row is not None and row.level == Level.RED


def test_store_ack_survives_deescalation_not_escalation(store: AlertStore) -> None:
    """Acknowledged stays acknowledged when the level drops; a worse level must be acknowledged again."""
    evs = _events([12, 55, 25, 60])  # fired yellow, red, deescalated orange, red
    store.commit_batch(evs[:2])
    store.ack(evs[0].id, "zhang.wei", "crew dispatched", T0 + 100)
    store.commit_batch(evs[2:3])
    assert store.get(evs[0].id).state == "acknowledged"  # type: ignore[union-attr]
    store.commit_batch(evs[3:])
    row = store.get(evs[0].id)
    assert row is not None and row.state == "firing" and row.acked_by == "zhang.wei"


def test_store_manual_resolve_and_history(store: AlertStore) -> None:
    """Operator actions are in the history with actor and reason, merged in time order."""
    evs = _events([12])
    store.commit_batch(evs)
    aid = evs[0].id
    store.comment(aid, "li.na", "on site", T0 + 10)
    store.resolve(aid, "li.na", "valve replaced", T0 + 20)
    with pytest.raises(StoreError, match="already resolved"):
        store.resolve(aid, "li.na", "again", T0 + 30)
    with pytest.raises(StoreError, match="resolved"):
        store.ack(aid, "li.na", "", T0 + 30)
    hist = store.history(aid)
    assert [(h.event, h.actor, h.reason) for h in hist][1:] == [("comment", "li.na", "on site"),
                                                                 ("resolved", "li.na", "valve replaced")]
    assert hist[0].event == "fired" and hist[0].actor == "engine"
    assert store.list_alerts(state="open") == []
    assert [r.id for r in store.list_alerts(state="resolved")] == [aid]


def test_store_unknown_alert_and_missing_actor_are_errors(store: AlertStore) -> None:
    """Actions name the alert that does not exist, and require an actor."""
    with pytest.raises(StoreError, match="no alert with id 'nope'"):
        store.ack("nope", "x", "", T0)
    evs = _events([12])
    store.commit_batch(evs)
    with pytest.raises(StoreError, match="actor"):
        store.ack(evs[0].id, " ", "", T0)


def test_store_list_filters_by_domain_level_state(store: AlertStore) -> None:
    """list_alerts filters by state (open = firing|acknowledged), domain and minimum level; worst first."""
    store.commit_batch(_events([12], "gas-0000") + _events([55], "gas-0001"))
    rows = store.list_alerts(state="open", domain="gas")
    assert [r.level for r in rows] == [Level.RED, Level.YELLOW]
    assert [r.subject for r in store.list_alerts(level="orange")] == ["gas-0001"]
    assert store.list_alerts(domain="water") == []
    with pytest.raises(StoreError, match="unknown alert state"):
        store.list_alerts(state="open-ish")


def test_store_checkpoint_and_deadletters_commit_with_the_batch(store: AlertStore) -> None:
    """Checkpoint and dead-letter counts are written in the batch's transaction; a failed batch leaves
    neither events nor checkpoint behind."""
    store.commit_batch(_events([12]), dead_counts={"not_json": 2}, snapshot={"version": 1, "x": [1]},
                       journal_offset=123, now=T0)
    cp = store.checkpoint()
    assert cp is not None and cp.snapshot == {"version": 1, "x": [1]} and cp.journal_offset == 123
    bad = _events([12], "gas-0001")
    with pytest.raises(TypeError):
        store.commit_batch(bad, dead_counts={"late": 1}, snapshot={"bad": object()}, journal_offset=999)
    assert store.checkpoint().journal_offset == 123  # type: ignore[union-attr]
    assert store.deadletter_counts() == {"not_json": 2}
    assert store.get(bad[0].id) is None


def test_store_survives_reopen(tmp_path: Path) -> None:
    """Everything is on disk: a second connection sees the same alerts and checkpoint."""
    with AlertStore(tmp_path / "a.db") as s1:
        s1.commit_batch(_events([12]), snapshot={"version": 1}, journal_offset=5)
    with AlertStore(tmp_path / "a.db") as s2:
        assert s2.count_events() == 1 and s2.checkpoint() is not None


def test_jsonl_sink_round_trips_with_sorted_keys(tmp_path: Path) -> None:
    """The JSON-lines writer is sorted-key orjson of to_dict(), and reads back to equal events."""
    evs = _events([1, 6, 12, 55, 25, 3])
    with JsonlSink(tmp_path / "a.jsonl") as sink:
        sink.write(evs)
    first = (tmp_path / "a.jsonl").read_bytes().splitlines()[0]
    assert first.startswith(b'{"actor":"engine","at":')
    assert list(read_events(tmp_path / "a.jsonl")) == evs
