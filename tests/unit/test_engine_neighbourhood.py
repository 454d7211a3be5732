"""Neighbourhood rules: several wells of one corridor together are one incident; a lone one is a
sensor-health finding until its neighbours confirm it."""

from __future__ import annotations

from pathlib import Path

from lifeline.engine import Engine
from lifeline.model import AlertKind, Reading, Sensor
from lifeline.registry import Registry
from lifeline.rules.loader import load_rules

T0 = 1_764_403_200.0
PACK = """
domain: gas
defaults: {owner: gas_company}
rules:
  - id: gas.corridor.methane
    title: Methane in several wells of one corridor
    match: {metric: ch4_lel, asset_types: [manhole]}
    neighbourhood: {group_by: corridor, member_above: 5, window: 10m}
    threshold: {direction: above, levels: {yellow: 2, orange: 3}}
    message: "{value:.0f} wells elevated along {sensor}'s corridor"
  - id: gas.well.isolated
    title: One well elevated, neighbours normal
    match: {metric: ch4_lel, asset_types: [manhole]}
    neighbourhood: {group_by: corridor, member_above: 5, window: 10m, measure: isolated}
    threshold: {direction: above, levels: {blue: 1}}
    for: 10m
"""


def _engine(tmp_path: Path) -> Engine:
    (tmp_path / "gas.yaml").write_text(PACK)
    wells = [Sensor(f"W{i}", "gas", "LY", 117.2, 31.8, asset=f"MH{i}", asset_type="manhole",
                    labels={"corridor": "C1" if i < 4 else "C2"}) for i in range(6)]
    return Engine(load_rules([tmp_path / "gas.yaml"]), Registry(wells))


def _feed(eng: Engine, t: float, values: dict[str, float]) -> list[tuple[str, str, str, str]]:
    out = eng.process([Reading(s, "gas", "ch4_lel", T0 + t, v) for s, v in values.items()]).events
    return [(e.rule, e.subject, e.event.value, e.level.colour) for e in out]


def test_neighbourhood_counts_elevated_wells_as_one_group_alert(tmp_path: Path) -> None:
    """Two, then three elevated wells of corridor C1 give one alert with subject corridor:C1, escalating."""
    eng = _engine(tmp_path)
    base = {f"W{i}": 1.0 for i in range(6)}
    assert _feed(eng, 0, base) == []
    assert _feed(eng, 60, {**base, "W1": 12.0}) == []
    assert _feed(eng, 120, {**base, "W1": 14.0, "W2": 8.0}) == [
        ("gas.corridor.methane", "corridor:C1", "fired", "yellow")]
    assert _feed(eng, 180, {**base, "W1": 20.0, "W2": 9.0, "W3": 6.0}) == [
        ("gas.corridor.methane", "corridor:C1", "escalated", "orange")]


def test_neighbourhood_other_corridor_does_not_count(tmp_path: Path) -> None:
    """Elevated wells in two different corridors are not corroboration."""
    eng = _engine(tmp_path)
    base = {f"W{i}": 1.0 for i in range(6)}
    _feed(eng, 0, base)
    assert [e for e in _feed(eng, 60, {**base, "W1": 12.0, "W4": 12.0}) if e[0] == "gas.corridor.methane"] == []


def test_neighbourhood_isolated_well_is_a_health_finding(tmp_path: Path) -> None:
    """A lone elevated well for 10 min is a health alert; it resolves when a neighbour confirms."""
    eng = _engine(tmp_path)
    base = {f"W{i}": 1.0 for i in range(6)}
    _feed(eng, 0, base)
    events = []
    for t in range(60, 781, 60):
        events += _feed(eng, t, {**base, "W1": 9.0})
    assert events == [("gas.well.isolated", "W1", "fired", "blue")]
    out = eng.process([Reading("W2", "gas", "ch4_lel", T0 + 800, 7.0), Reading("W1", "gas", "ch4_lel", T0 + 801, 9.0)])
    assert [(e.rule, e.event.value, e.kind) for e in out.events] == [
        ("gas.corridor.methane", "fired", AlertKind.SAFETY), ("gas.well.isolated", "resolved", AlertKind.HEALTH)]


def test_neighbourhood_stale_member_values_expire(tmp_path: Path) -> None:
    """A neighbour's elevated reading older than the window no longer counts."""
    eng = _engine(tmp_path)
    base = {f"W{i}": 1.0 for i in range(6)}
    _feed(eng, 0, base)
    eng.process([Reading("W2", "gas", "ch4_lel", T0 + 60, 9.0)])
    assert [e for e in _feed(eng, 60 + 601, {"W1": 9.0}) if e[0] == "gas.corridor.methane"] == []


def test_neighbourhood_survives_snapshot(tmp_path: Path) -> None:
    """Group alerts are ordinary lifecycles: a restored engine continues them with the same id."""
    eng = _engine(tmp_path)
    base = {f"W{i}": 1.0 for i in range(6)}
    _feed(eng, 0, base)
    _feed(eng, 60, {**base, "W1": 14.0, "W2": 8.0})
    fresh = _engine(tmp_path)
    fresh.restore(eng.snapshot())
    a = eng.process([Reading("W1", "gas", "ch4_lel", T0 + 120, 1.0), Reading("W2", "gas", "ch4_lel", T0 + 121, 1.0)])
    b = fresh.process([Reading("W1", "gas", "ch4_lel", T0 + 120, 1.0), Reading("W2", "gas", "ch4_lel", T0 + 121, 1.0)])
    assert [e.to_dict() for e in a.events] == [e.to_dict() for e in b.events]
    assert [e.event.value for e in a.events] == ["resolved"]
