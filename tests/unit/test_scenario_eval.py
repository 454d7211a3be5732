"""The scenario evaluation's matching and aggregation (benchmarks/scenario_eval.py) on hand-made alerts and
truths, and one tiny end-to-end run through the real engine and the shipped packs."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from benchmarks import scenario_eval as se
from benchmarks.scenario_eval import Alert, FaultCase, IncidentCase
from lifeline import paths
from lifeline.model import Sensor
from lifeline.registry import Registry

T0 = 1_784_000_000.0
GRACE = 900.0


def _alert(sensor: str, ts: float, *, rule: str = "gas.methane.high", kind: str = "safety", event: str = "fired",
           subject: str | None = None, level: str = "yellow", value: float | None = 12.0) -> Alert:
    return Alert(f"id-{sensor}-{ts:g}-{rule}", rule, kind, event, subject or sensor, sensor, "gas", ts, level, value,
                 "msg")


def _incident(sensors: tuple[str, ...] = ("W1", "W2"), start: float = T0, end: float = T0 + 1800.0) -> IncidentCase:
    return IncidentCase("gas_leak/weak/s1", "sc", "suite", "gas", "gas_leak", "weak", 10.0, "W1", start, end, sensors)


def _fault(sensor: str = "W1", kind: str = "stuck") -> FaultCase:
    return FaultCase("faults/s1#0", "sc", "suite", "gas", kind, sensor, "ch4_lel", T0, T0 + 3600.0)


# ---- incidents ------------------------------------------------------------------------------------------------------

def test_incident_detected_by_first_safety_alert_on_an_affected_sensor() -> None:
    """The earliest fired safety alert on any affected sensor in the window gives the TTD and the rule."""
    alerts = [_alert("W2", T0 + 300.0, level="orange"), _alert("W1", T0 + 120.0, rule="gas.other"),
              _alert("W1", T0 + 600.0, event="escalated", level="red")]
    r = se.match_incident(_incident(), alerts, GRACE)
    assert r.detected and r.ttd_s == 120.0
    assert r.first is not None and r.first.rule == "gas.other" and r.first.sensor == "W1"
    assert r.rules == ("gas.methane.high", "gas.other") and r.max_level == "red"


def test_incident_missed_when_alerts_are_elsewhere_earlier_later_or_not_safety() -> None:
    """Another sensor, before the start, after end + grace, a health finding, an escalation only: not detected."""
    case = _incident()
    alerts = [_alert("W9", T0 + 60.0), _alert("W1", T0 - 1.0), _alert("W1", case.end + GRACE + 1.0),
              _alert("W1", T0 + 60.0, kind="health"), _alert("W2", T0 + 60.0, kind="nodata"),
              _alert("W2", T0 + 90.0, event="escalated")]
    r = se.match_incident(case, alerts, GRACE)
    assert not r.detected and r.ttd_s is None and r.first is None and r.rules == ()


def test_incident_window_includes_its_bounds_and_the_grace() -> None:
    case = _incident()
    assert se.match_incident(case, [_alert("W1", T0)], GRACE).ttd_s == 0.0
    assert se.match_incident(case, [_alert("W2", case.end + GRACE)], GRACE).ttd_s == case.end + GRACE - T0
    assert not se.match_incident(case, [_alert("W2", case.end + GRACE)], 0.0).detected


def test_incident_group_alert_counts_for_every_member_of_the_group() -> None:
    """A corridor alert triggered by an unaffected well still detects a leak on another member."""
    alert = _alert("W7", T0 + 200.0, rule="gas.corridor.methane", subject="corridor:C1")
    assert not se.match_incident(_incident(), [alert], GRACE).detected
    groups = {"corridor:C1": frozenset({"W1", "W7"})}
    r = se.match_incident(_incident(), [alert], GRACE, groups)
    assert r.detected and r.ttd_s == 200.0


def test_group_members_resolves_labels_assets_and_sensor_ids() -> None:
    reg = Registry([Sensor("W1", "gas", "LY", 0, 0, asset="MH1", labels={"corridor": "C1"}),
                    Sensor("W2", "gas", "LY", 0, 0, asset="MH2", labels={"corridor": "C1"}),
                    Sensor("W3", "gas", "BH", 0, 0, asset="MH3", labels={"corridor": "C2"})])
    assert se.group_members("corridor:C1", reg) == {"W1", "W2"}
    assert se.group_members("district:BH", reg) == {"W3"}
    assert se.group_members("W2", reg) == {"W2"}
    assert se.group_members("nothing", reg) == frozenset()


def test_unattributed_lists_safety_alerts_outside_every_window() -> None:
    windows = [(T0, T0 + 100.0, frozenset({"W1"}))]
    inside, outside_time, other_sensor = _alert("W1", T0 + 50), _alert("W1", T0 + 101), _alert("W2", T0 + 50)
    health = _alert("W3", T0 + 50, kind="health")
    assert se.unattributed([inside, outside_time, other_sensor, health], windows) == [outside_time, other_sensor]


# ---- faults ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("alerts", "outcome"), [
    ([_alert("W1", T0 + 60, kind="health", rule="gas.sensor.stuck")], "health"),
    ([_alert("W1", T0 + 300, kind="nodata", rule="gas.sensor.nodata")], "health"),
    ([_alert("W1", T0 + 60, kind="health"), _alert("W1", T0 + 90)], "both"),
    ([_alert("W1", T0 + 3600 + GRACE)], "safety"),
    ([_alert("W2", T0 + 60, kind="health"), _alert("W1", T0 - 5, kind="health"),
      _alert("W1", T0 + 3600 + GRACE + 1), _alert("W1", T0 + 60, kind="health", event="escalated")], "missed"),
])
def test_fault_outcomes(alerts: list[Alert], outcome: str) -> None:
    """Health/nodata on the sensor in [start, end + grace] = reported; a safety alert there = misreported."""
    assert se.match_fault(_fault(), alerts, GRACE).outcome == outcome


def test_fault_summary_counts_both_in_both_columns() -> None:
    results = [se.match_fault(_fault(), a, GRACE) for a in (
        [_alert("W1", T0 + 1, kind="health")],
        [_alert("W1", T0 + 1, kind="health"), _alert("W1", T0 + 2)],
        [_alert("W1", T0 + 2)],
        [],
    )] + [se.match_fault(_fault(kind="dropout"), [_alert("W1", T0 + 200, kind="nodata")], GRACE)]
    out = se.fault_summary(results)
    assert list(out) == ["stuck", "dropout"]  # FAULT_KINDS order
    assert out["stuck"]["gas"] == {"faults": 4, "health": 2, "safety": 2, "missed": 1, "correct": 1,
                                   "unobservable": 0, "observable": 4, "correct_observable": 1}
    assert out["dropout"]["gas"] == {"faults": 1, "health": 1, "safety": 0, "missed": 0, "correct": 1,
                                     "unobservable": 0, "observable": 1, "correct_observable": 1}


def test_fault_observability_compares_with_the_fault_free_series() -> None:
    """A rain gauge stuck at 0 on a dry day sends what it would have sent: unobservable, with why; a stuck
    water pressure and a dropout change what the engine receives."""
    from lifeline.registry import load_registry
    from simulators.runner import generate
    from simulators.scenario import parse_scenario

    registry = load_registry(paths.default_registry(), paths.default_districts())
    doc = {"name": "obs", "start": se.DAY0 + 10 * 3600.0, "duration": 3600.0, "seed": 1,
           "sensors": {"ids": ["LY-DRN-R1", "LY-WAT-M1-N1"]},
           "faults": [{"kind": "stuck", "sensor": "LY-DRN-R1", "metric": "rain_mm_5min", "start": 600,
                       "duration": "30m"},
                      {"kind": "stuck", "sensor": "LY-WAT-M1-N1", "metric": "pressure_mpa", "start": 600,
                       "duration": "30m"},
                      {"kind": "dropout", "sensor": "LY-DRN-R1", "start": 2700, "duration": "5m"}]}
    run = generate(registry, parse_scenario(doc))
    seen, why = se.fault_observability(run, 0)
    assert not seen and "rain_mm_5min 0" in why
    assert se.fault_observability(run, 1) == (True, "")
    assert se.fault_observability(run, 2) == (True, "")
    cases = se._fault_cases(se.Task("faults", "obs"), run.truth(), registry, run)
    assert [c.observable for c in cases] == [False, True, True]


# ---- aggregation ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [[5.0], [3.0, 1.0], list(range(1, 11)), [60.0, 12.0, 7200.0, 95.0, 14.0, 13.0]])
@pytest.mark.parametrize("q", [0, 50, 95, 100])
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    assert se.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_examples_and_empty() -> None:
    assert se.percentile(list(range(1, 11)), 95) == pytest.approx(9.55)
    assert se.percentile(list(range(1, 21)), 95) == pytest.approx(19.05)
    assert se.percentile([], 50) is None


def test_incident_summary_recall_and_ttd_over_detected_only() -> None:
    cases = [_incident(), _incident(("W3",)), _incident(("W4",))]
    alerts = [_alert("W1", T0 + 100.0), _alert("W3", T0 + 300.0)]
    results = [se.match_incident(c, alerts, GRACE) for c in cases]
    out = se.incident_summary(results, lambda r: r.case.domain)
    assert out == {"gas": {"incidents": 3, "detected": 2, "recall": 0.6667, "ttd_median_s": 200.0,
                           "ttd_p95_s": 290.0}}


def test_false_alarm_rate_per_1000_sensor_days() -> None:
    assert se.false_alarm_rate(0, 960.0) == 0.0
    assert se.false_alarm_rate(1, 960.0) == pytest.approx(1.042)
    assert se.false_alarm_rate(3, 0.0) is None


# ---- end to end -----------------------------------------------------------------------------------------------------

def test_tiny_end_to_end_incident_fault_and_quiet_span() -> None:
    """One gas-pressure incident, one dropout fault, one quiet hour of a district: real engine, shipped packs."""
    rules = str(paths.REPO / "rules")
    start = se.DAY0 + 10 * 3600.0
    doc = {"name": "tiny", "start": start, "duration": 3600.0, "seed": 1,
           "sensors": {"ids": ["LY-GAS-C1-P1", "LY-GAS-C1-W03", "LY-GAS-C1-W04"]},
           "incidents": [{"kind": "gas_pressure", "target": "LY-GAS-C1-P1", "start": 600, "duration": "20m",
                          "magnitude": -0.35}],
           "faults": [{"kind": "dropout", "sensor": "LY-GAS-C1-W03", "start": 900, "duration": "15m"}]}
    inc = se.run_task(se.Task("incident", "tiny", doc, {"tier": "strong", "scored": 0}), rules, GRACE, 0.0)
    (r,) = inc["incidents"]
    assert r.detected and r.first is not None and r.first.rule == "gas.pressure.deviation"
    assert 0 < r.ttd_s < 600 and r.case.sensors == ("LY-GAS-C1-P1",)
    (f,) = inc["faults"]
    assert f.outcome == "health" and f.health[0].rule == "gas.sensor.nodata"
    assert inc["unattributed"] == []

    quiet = se.run_task(se.Task("quiet", "quiet/LY", meta={"district": "LY"}), rules, GRACE, 1 / 24)
    assert quiet["alerts"] == [] and quiet["sensors"] > 30
    assert sum(quiet["sensor_days"].values()) == pytest.approx(quiet["sensors"] / 24)

    args = argparse.Namespace(seeds=1, quiet_days=1 / 24, warmup=600.0, grace=GRACE, rules="rules/", rules_dir=rules)
    fig = se.build_figures([inc, quiet], args)
    assert fig["targets"]["incident_recall"] == {"target": 1.0, "measured": 1.0, "met": True}
    assert fig["targets"]["faults_reported_as_health"]["met"]
    assert fig["quiet"]["safety_alerts"] == 0
    text = se.render(fig, {"machine": "test", "jobs": 1, "tasks": 2, "payloads": 1, "seconds": 1.0})
    assert "| gas | 1 | 1 | 1.00 |" in text and "## Missed incidents (0)" in text
