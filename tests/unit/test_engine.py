"""Engine and alert lifecycle: timeline tests ("at t=10 send X, expect Y")."""

from __future__ import annotations

from lifeline.engine import Engine
from lifeline.model import EventKind, Level
from lifeline.rules.model import RuleSet
from lifeline.testing import nodata_rule, reading, registry_of, sensors, threshold_rule

T0 = 1_764_403_200.0


def _engine(*rules: object, n: int = 2, interval: float = 60.0) -> Engine:
    return Engine(RuleSet(tuple(rules)), registry_of(sensors("gas", n, interval_s=interval)))  # type: ignore[arg-type]


Timeline = list[tuple[float, str, str]]


def _events(engine: Engine, series: list[tuple[float, float]], sensor: str = "gas-0000") -> Timeline:
    out = []
    for t, v in series:
        for e in engine.process([reading(sensor, v, T0 + t)]).events:
            out.append((e.ts - T0, e.event.value, e.level.colour))
    return out


def test_engine_fires_escalates_deescalates_resolves_in_place() -> None:
    """One alert per (rule, subject): its level moves in place and it resolves once, with one id."""
    eng = _engine(threshold_rule())
    evs = eng.process([reading("gas-0000", v, T0 + i) for i, v in enumerate([1, 6, 12, 55, 25, 3])]).events
    assert [(e.event, e.level) for e in evs] == [
        (EventKind.FIRED, Level.BLUE),
        (EventKind.ESCALATED, Level.YELLOW),
        (EventKind.ESCALATED, Level.RED),
        (EventKind.DEESCALATED, Level.ORANGE),
        (EventKind.RESOLVED, Level.ORANGE),
    ]
    assert len({e.id for e in evs}) == 1
    assert [e.seq for e in evs] == [1, 2, 3, 4, 5]
    assert evs[0].started == T0 + 1


def test_engine_for_duration_uses_event_time() -> None:
    """A 'for: 60s' rule fires only once the condition has held 60 s of event time."""
    eng = _engine(threshold_rule(for_s=60))
    assert _events(eng, [(0, 30), (30, 30), (59, 30)]) == []
    assert _events(eng, [(60, 30)]) == [(60, "fired", "orange")]


def test_engine_for_duration_restarts_when_condition_breaks() -> None:
    """A dip below the lowest bound restarts the 'for' clock."""
    eng = _engine(threshold_rule(for_s=60))
    assert _events(eng, [(0, 30), (30, 1), (70, 30), (120, 30)]) == []
    assert _events(eng, [(130, 30)]) == [(130, "fired", "orange")]


def test_engine_hysteresis_holds_level_near_bound() -> None:
    """With hysteresis 2, a value 1 below the bound keeps the level; 3 below drops it."""
    eng = _engine(threshold_rule(hysteresis=2))
    assert _events(eng, [(0, 10.5), (1, 9.0), (2, 8.5)]) == [(0, "fired", "yellow")]
    assert _events(eng, [(3, 7.9)]) == [(3, "deescalated", "blue")]
    assert _events(eng, [(4, 3.5), (5, 2.9)]) == [(5, "resolved", "blue")]


def test_engine_clear_for_delays_resolution() -> None:
    """clear_for: the condition must stay clear that long before the alert resolves."""
    eng = _engine(threshold_rule(clear_for_s=30))
    assert _events(eng, [(0, 12), (10, 0), (20, 0)]) == [(0, "fired", "yellow")]
    assert _events(eng, [(40, 0)]) == [(40, "resolved", "yellow")]


def test_engine_below_direction() -> None:
    """'below' thresholds: lower values are worse (water pressure)."""
    rule = threshold_rule("gas.pressure.low", "p", {"yellow": 0.16, "orange": 0.14, "red": 0.10}, direction="below")
    eng = _engine(rule)
    out = eng.process([reading("gas-0000", v, T0 + i, metric="p") for i, v in enumerate([0.3, 0.15, 0.09, 0.2])])
    assert [(e.event.value, e.level.colour) for e in out.events] == [
        ("fired", "yellow"), ("escalated", "red"), ("resolved", "red")]


def test_engine_nodata_is_separate_and_never_resolves_safety_alert() -> None:
    """A silent sensor raises a 'nodata' alert; its open safety alert stays open (no false resolve)."""
    eng = _engine(threshold_rule(), nodata_rule(intervals=3), interval=60)
    eng.process([reading("gas-0000", 30, T0), reading("gas-0001", 0, T0)])
    out = eng.process([reading("gas-0001", 0, T0 + t) for t in range(60, 400, 60)]).events
    assert [(e.rule, e.sensor, e.event.value) for e in out] == [("gas.sensor.nodata", "gas-0000", "fired")]
    assert out[0].kind.value == "nodata"
    assert ("gas.methane.high", "gas-0000", Level.ORANGE) in eng.open_alerts()
    back = eng.process([reading("gas-0000", 30, T0 + 400)]).events
    assert [(e.rule, e.event.value) for e in back] == [("gas.sensor.nodata", "resolved")]


def test_engine_tick_advances_event_time_for_nodata() -> None:
    """With no readings at all, tick(now) still lets the staleness scan run."""
    eng = _engine(nodata_rule(intervals=3), interval=10)
    eng.process([reading("gas-0000", 0, T0)])
    assert eng.tick(T0 + 15).events == []
    fired = eng.tick(T0 + 45).events
    assert [(e.event.value, e.sensor) for e in fired] == [("fired", "gas-0000")]


def test_engine_dead_letters_duplicate_seq_and_late_readings() -> None:
    """Duplicates and out-of-order readings are dead-lettered with a reason, not evaluated."""
    eng = _engine(threshold_rule())
    out = eng.process([
        reading("gas-0000", 1, T0 + 10, seq=5),
        reading("gas-0000", 60, T0 + 11, seq=5),
        reading("gas-0000", 60, T0 + 5, seq=6),
    ])
    assert [d.reason for d in out.dead] == ["duplicate_seq", "late"]
    assert out.events == []
    assert eng.counts["dead.duplicate_seq"] == 1


def test_engine_alert_ids_are_deterministic() -> None:
    """The same input gives the same alert ids in two engines."""
    data = [reading("gas-0000", v, T0 + i) for i, v in enumerate([0, 30, 0, 60, 0])]
    a = [e.to_dict() for e in _engine(threshold_rule()).process(data).events]
    b = [e.to_dict() for e in _engine(threshold_rule()).process(data).events]
    assert a == b and len(a) == 4
    assert a[0]["id"] != a[2]["id"]


def test_engine_bad_quality_is_not_evaluated_but_counts_as_data() -> None:
    """quality=bad readings keep the sensor 'alive' but never raise a safety alert."""
    from lifeline.model import Reading

    eng = _engine(threshold_rule(), nodata_rule())
    out = eng.process([Reading("gas-0000", "gas", "ch4_lel", T0 + i, 90.0, quality="bad") for i in range(0, 600, 60)])
    assert out.events == []


def test_engine_detector_rule_maps_score_to_levels() -> None:
    """A detector between value and thresholds: a steady series stays quiet, a jump fires on the score."""
    from lifeline.testing import detector_rule

    rule = detector_rule(params={"window": 20, "min_samples": 10, "z_floor": 3.0, "z_scale": 3.0})
    eng = _engine(rule)
    steady = [(float(i), 2.0 + 0.1 * (i % 3)) for i in range(30)]
    assert _events(eng, steady) == []
    assert _events(eng, [(30.0, 40.0)]) == [(30.0, "fired", "orange")]


def test_engine_detector_state_survives_snapshot() -> None:
    """The detector's window is part of the engine snapshot: a restored engine fires identically."""
    from lifeline.testing import detector_rule

    rule = detector_rule(params={"window": 20, "min_samples": 10})
    a = _engine(rule)
    _events(a, [(float(i), 2.0 + 0.1 * (i % 3)) for i in range(30)])
    b = _engine(rule)
    b.restore(a.snapshot())
    assert _events(b, [(30.0, 40.0)]) == _events(a, [(30.0, 40.0)]) == [(30.0, "fired", "orange")]
