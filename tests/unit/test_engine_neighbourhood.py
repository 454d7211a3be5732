"""Neighbourhood rules: several wells of one corridor together are one incident; a lone one is a
sensor-health finding until its neighbours confirm it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lifeline.engine import Engine
from lifeline.model import AlertEvent, AlertKind, Reading, Sensor
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


def _main_pack(rule_id: str, metric: str, blue: float, extra: str = "") -> str:
    """A residual rule on one water main's nodes (``extra``: more neighbourhood keys, ", offsets: 1d")."""
    return f"""
domain: water
defaults: {{owner: water_utility}}
rules:
  - id: {rule_id}
    title: Node drifting away from its main
    match: {{metric: {metric}}}
    neighbourhood: {{group_by: asset, measure: residual, window: 10m, min_others: 2{extra}}}
    threshold: {{direction: above, levels: {{blue: {blue}}}}}
    for: 10m
"""


def _run_main(tmp_path: Path, pack: str, metric: str, minutes: int, value: Callable[[int, int], float],
              snapshot_at: int | None = None) -> tuple[list[AlertEvent], Engine]:
    """Four nodes N0..N3 of main M1 report ``value(minute, node)`` once a minute; at ``snapshot_at`` the
    engine is replaced by a fresh one restored from its snapshot (a restart)."""
    (tmp_path / "water.yaml").write_text(pack)
    nodes = [Sensor(f"N{i}", "water", "LY", 117.2, 31.8, asset="M1", asset_type="water_main") for i in range(4)]
    rules, registry = load_rules([tmp_path / "water.yaml"]), Registry(nodes)
    eng = Engine(rules, registry)
    out: list[AlertEvent] = []
    for k in range(minutes):
        if snapshot_at is not None and k == snapshot_at:
            restored = Engine(rules, registry)
            restored.restore(eng.snapshot())
            eng = restored
        for i in range(4):
            out += eng.process([Reading(f"N{i}", "water", metric, T0 + 60 * k + i, value(k, i))]).events
    return out, eng


#: usual levels of four nodes along a main: the two ends sit 0.015 MPa above and below the median
LEVELS = (0.315, 0.302, 0.298, 0.285)


def _offsets_run(tmp_path: Path, extra: str, minutes: int, drift_per_min: float, snapshot_at: int | None = None
                 ) -> tuple[list[tuple[str, str, str, float | None]], Engine]:
    def value(k: int, i: int) -> float:
        drift = drift_per_min * max(0, k - 120)  # from minute 120, after two hours of learning
        demand = 0.01 * ((k % 90) / 90.0)  # the whole main swings with demand
        noise = 0.001 * (((k * 7 + i * 13) % 11) - 5) / 5
        return LEVELS[i] - demand + noise - (drift if i == 0 else 0.0)

    out, eng = _run_main(tmp_path, _main_pack("water.sensor.drift", "pressure_mpa", 0.02, extra), "pressure_mpa",
                         minutes, value, snapshot_at)
    return [(e.rule, e.subject, e.event.value, e.value) for e in out], eng


def test_residual_offsets_see_a_drift_that_starts_on_the_far_side_of_the_usual_gap(tmp_path: Path) -> None:
    """N0 usually reads 0.015 MPa above the main's median and drifts down 0.025 MPa: the absolute residual
    goes 0.015 -> 0 -> 0.010 and never reaches 0.02; with offsets it is the drift itself (0.025)."""
    plain, _ = _offsets_run(tmp_path, "", 240, 0.025 / 90)
    assert plain == []
    learned, eng = _offsets_run(tmp_path, ", offsets: 1d, learn: 1h", 240, 0.025 / 90)
    assert [(r, s, ev) for r, s, ev, _ in learned] == [("water.sensor.drift", "N0", "fired")]
    value = learned[0][3]
    assert value is not None and 0.02 <= value < 0.025
    # the mean of the first hour, then a day-long average: the drift's minutes before the finding paused N0 barely count
    gaps = {sid: gap for rule, sid, gap, *_ in eng.snapshot()["offsets"]}
    assert abs(gaps["N0"] - 0.015) < 0.001 and abs(gaps["N3"] + 0.015) < 0.001 and abs(gaps["N1"] - gaps["N2"]) < 0.006


def test_residual_offsets_are_quiet_without_a_drift_and_plain_while_learning(tmp_path: Path) -> None:
    """Steady nodes with large usual gaps raise nothing; while a node is still learning its gap the
    residual is the plain one (N0's drift from minute 120, still learning until minute 180 with
    ``learn: 3h``, fires exactly as it does without offsets)."""
    events, _ = _offsets_run(tmp_path, ", offsets: 1d, learn: 3h", 240, 0.0)
    assert events == []
    learning, _ = _offsets_run(tmp_path, ", offsets: 1d, learn: 3h", 180, 0.001)
    plain, _ = _offsets_run(tmp_path, "", 180, 0.001)
    assert learning == plain != []


def test_residual_offsets_survive_a_restart(tmp_path: Path) -> None:
    """The learned gaps are engine state: a restore mid-run changes no later output."""
    straight, _ = _offsets_run(tmp_path, ", offsets: 1d, learn: 1h", 240, 0.025 / 90)
    restarted, _ = _offsets_run(tmp_path, ", offsets: 1d, learn: 1h", 240, 0.025 / 90, snapshot_at=150)
    assert restarted == straight != []


def _flow_run(tmp_path: Path, extra: str, drift_per_min: float, snapshot_at: int | None = None
              ) -> list[tuple[str, str, str]]:
    """Four meters on one main, 50 m³/h with ±6 m³/h reading noise; N0 drifts from minute 60."""
    def value(k: int, i: int) -> float:
        noise = 6.0 * (((k * 37 + i * 53) % 23) - 11) / 11  # a deterministic ±6 scatter
        return 50.0 + noise + (drift_per_min * max(0, k - 60) if i == 0 else 0.0)

    out, _ = _run_main(tmp_path, _main_pack("water.flow.drift", "flow_m3h", 5, extra), "flow_m3h", 180, value,
                       snapshot_at)
    return [(e.rule, e.subject, e.event.value) for e in out]


def test_residual_smooth_sees_a_drift_through_reading_noise(tmp_path: Path) -> None:
    """+9.6 m³/h over two hours under ±6 m³/h noise: every few minutes one reading dips under the bound and
    restarts the 10-min ``for``; the 10-min average of the residual holds it. Without a drift: quiet."""
    assert _flow_run(tmp_path, "", 0.08) == []
    smooth = _flow_run(tmp_path, ", smooth: 10m", 0.08)
    assert smooth[:1] == [("water.flow.drift", "N0", "fired")] and {s for _, s, _ in smooth} == {"N0"}
    assert _flow_run(tmp_path, ", smooth: 10m", 0.0) == []
    assert _flow_run(tmp_path, ", smooth: 10m", 0.08, snapshot_at=100) == smooth  # the average is engine state


QUORUM = """
domain: gas
defaults: {owner: gas_company}
rules:
  - id: gas.pressure.deviation
    title: Corridor pressure off its set point
    match: {value: "100 * abs(pressure_mpa - p_set_mpa) / p_set_mpa", label_names: [p_set_mpa]}
    neighbourhood: {group_by: corridor, measure: quorum, window: 5m}
    threshold: {direction: above, levels: {blue: 10, yellow: 15}}
    message: "{value:.0f} % off the set point at two points of {subject}"
"""


def _quorum_run(tmp_path: Path, pressures: list[dict[str, float]]) -> list[tuple[str, str, str, str, float | None]]:
    """Minute k: the transmitters in ``pressures[k]`` report (each its own set point: P1 0.3, P2 0.2 MPa)."""
    (tmp_path / "gas.yaml").write_text(QUORUM)
    pts = [Sensor(f"P{i}", "gas", "LY", 117.2, 31.8, asset="C1", asset_type="gas_pipe",
                  labels={"corridor": "C1", "p_set_mpa": str(0.3 if i == 1 else 0.2)}) for i in (1, 2)]
    eng = Engine(load_rules([tmp_path / "gas.yaml"]), Registry(pts))
    out = []
    for k, row in enumerate(pressures):
        for j, (sid, p) in enumerate(sorted(row.items())):
            out += eng.process([Reading(sid, "gas", "pressure_mpa", T0 + 60 * k + j, p)]).events
    return [(e.rule, e.subject, e.event.value, e.level.colour, e.value) for e in out]


def test_quorum_needs_both_pressure_points_of_the_corridor(tmp_path: Path) -> None:
    """A deviation in % of each transmitter's own set point: one transmitter 20 % off (its own fault) raises
    nothing; both off (a regulator failure) raise one corridor alert, at the level the second one reaches."""
    alone = _quorum_run(tmp_path, [{"P1": 0.3, "P2": 0.2}] + [{"P1": 0.24, "P2": 0.2}] * 5)
    assert alone == []
    both = _quorum_run(tmp_path, [{"P1": 0.3, "P2": 0.2}] + [{"P1": 0.24, "P2": 0.176}] * 3)
    assert both[0][:4] == ("gas.pressure.deviation", "corridor:C1", "fired", "blue")
    assert both[0][4] is not None and abs(both[0][4] - 12.0) < 1e-9  # P2: 12 % off; P1's 20 % needs company
    assert len(both) == 1


def test_quorum_lets_the_fresh_member_decide_when_its_twin_is_silent(tmp_path: Path) -> None:
    """P2 silent for longer than the window: P1 alone reaching 20 % is all the evidence there is."""
    rows = [{"P1": 0.3, "P2": 0.2}] + [{"P1": 0.3}] * 5 + [{"P1": 0.24}] * 2
    fired = _quorum_run(tmp_path, rows)
    assert [(r, s, ev, lvl) for r, s, ev, lvl, _ in fired] == [("gas.pressure.deviation", "corridor:C1", "fired",
                                                                 "yellow")]


RATIO = """
domain: drainage
defaults: {owner: drainage_dept}
rules:
  - id: drainage.fill.drift
    title: Sewer level drifting away from the district's others
    match: {value: "fill_ratio / base_fill", label_names: [base_fill]}
    neighbourhood: {group_by: district, measure: residual, window: 10m}
    threshold: {direction: above, levels: {blue: 0.3}}
    for: 5m
"""


def test_residual_on_an_expression_compares_each_member_on_its_own_scale(tmp_path: Path) -> None:
    """Three sewers with different dry-weather fills follow the same daily swing: compared as fill / base_fill
    they agree, and the one whose gauge drifts up stands out alone (raw fill ratios differ by 0.2 always)."""
    (tmp_path / "drainage.yaml").write_text(RATIO)
    bases = (0.2, 0.3, 0.4)
    sewers = [Sensor(f"S{i}", "drainage", "LY", 117.2, 31.8, asset=f"SW{i}", asset_type="sewer",
                     labels={"base_fill": str(b)}) for i, b in enumerate(bases)]
    eng = Engine(load_rules([tmp_path / "drainage.yaml"]), Registry(sewers))
    fired = []
    for k in range(120):
        swing = 1.0 + 0.3 * ((k % 60) / 60.0)
        for i, b in enumerate(bases):
            drift = 0.005 * max(0, k - 60) if i == 0 else 0.0
            r = Reading(f"S{i}", "drainage", "fill_ratio", T0 + 60 * k + i, b * swing + drift)
            fired += [(e.subject, e.kind, e.event.value) for e in eng.process([r]).events]
    assert fired[:1] == [("S0", AlertKind.HEALTH, "fired")]
    assert {s for s, _, _ in fired} == {"S0"}


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
