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


RESIDUAL = """
domain: water
defaults: {owner: water_utility}
rules:
  - id: water.sensor.drift
    title: Pressure logger drifting away from its neighbours
    match: {metric: pressure_mpa}
    neighbourhood: {group_by: asset, measure: residual, window: 10m, min_others: 2}
    threshold: {direction: above, levels: {blue: 0.02}}   # MPa away from the main's median
    for: 10m
"""


def test_neighbourhood_residual_flags_a_drifting_logger(tmp_path: Path) -> None:
    """One logger drifting away from two steady neighbours on the same main raises a health alert on it;
    the same drop on all three (a real pressure change) raises nothing."""
    (tmp_path / "water.yaml").write_text(RESIDUAL)
    nodes = [Sensor(f"N{i}", "water", "LY", 117.2, 31.8, asset="M1", asset_type="water_main") for i in range(3)]

    def run(drift_all: bool) -> list[tuple[str, str, str, AlertKind]]:
        eng = Engine(load_rules([tmp_path / "water.yaml"]), Registry(nodes))
        out = []
        for k in range(240):
            drift = 0.0005 * max(0, k - 60)  # -0.03 MPa/h from minute 60
            for i in range(3):
                noise = 0.001 * (((k * 7 + i * 13) % 11) - 5) / 5
                v = 0.3 + noise - (drift if (i == 0 or drift_all) else 0.0)
                out += eng.process([Reading(f"N{i}", "water", "pressure_mpa", T0 + 60 * k + i, v)]).events
        return [(e.rule, e.subject, e.event.value, e.kind) for e in out]

    fired = run(drift_all=False)
    assert fired[:1] == [("water.sensor.drift", "N0", "fired", AlertKind.HEALTH)]
    assert {e[1] for e in fired} == {"N0"}
    assert run(drift_all=True) == []


def test_engine_message_fills_numeric_labels(tmp_path: Path) -> None:
    """Message placeholders naming a numeric registry label (p_set_mpa) are filled with its value."""
    (tmp_path / "gas.yaml").write_text("""
domain: gas
defaults: {owner: gas_company}
rules:
  - id: gas.pressure.deviation
    title: Off set point
    match: {value: "100 * abs(pressure_mpa - p_set_mpa) / p_set_mpa", label_names: [p_set_mpa]}
    threshold: {direction: above, levels: {blue: 10}}
    message: "{pressure_mpa:.2f} MPa vs set point {p_set_mpa} MPa"
""")
    eng = Engine(load_rules([tmp_path / "gas.yaml"]),
                 Registry([Sensor("P1", "gas", "LY", 117.2, 31.8, labels={"p_set_mpa": "0.4"})]))
    out = eng.process([Reading("P1", "gas", "pressure_mpa", T0, 0.3)]).events
    assert [e.message for e in out] == ["0.30 MPa vs set point 0.4 MPa"]
