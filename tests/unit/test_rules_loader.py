"""Rule packs: the shipped packs load, every invalid fixture gives exactly its expected problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.model import Level
from lifeline.rules.loader import RulesError, check_rules, load_rules
from lifeline.rules.model import Thresholds

ROOT = Path(__file__).resolve().parents[2]
INVALID = Path(__file__).parent / "testdata" / "rules" / "invalid"
CASES = sorted(p.stem for p in INVALID.glob("*.yaml"))

# The simulators' metric vocabulary (the brief's list), per domain.
KNOWN: dict[str, set[str]] = {
    "gas": {"ch4_lel", "pressure_mpa"},
    "water": {"pressure_mpa", "flow_m3h"},
    "drainage": {"depth_cm", "fill_ratio", "rain_mm_5min"},
    "bridge": {"freq1_hz", "temp_c", "accel_rms_mg", "crack_mm", "deflection_mm"},
    "elevator": {"passenger", "moving", "door_closed", "door_zone", "speed_ratio"},
    "crowd": {"density_ppm2", "occupancy_pct"},
}

GOOD = """\
domain: gas
defaults: {owner: gas_company, for: 1m}
rules:
  - id: gas.methane.high
    title: Methane
    match: {metric: ch4_lel, labels: {well_type: sewer, ring: 2}, asset_types: [manhole], sensors: [g-1]}
    threshold:
      direction: above
      levels: {red: 50, blue: 5}
      hysteresis: 2
    clear_for: 30s
    message: "CH4 {value:.1f} %LEL at {sensor}"
    playbook: Ventilate.
  - id: gas.pressure.deviation
    title: Pressure
    match:
      value: "100 * abs(pressure_mpa - p_set_mpa) / p_set_mpa"
      label_names: [p_set_mpa]
    threshold: {direction: above, levels: {yellow: 15}}
    owner: gas_control
  - id: gas.sensor.nodata
    title: Silent
    match: {metric: ch4_lel}
    nodata: {after: 15m}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", CASES)
def test_loader_invalid_fixture_gives_exact_problems(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each invalid fixture yields exactly the lines in its .expected file, all at once."""
    monkeypatch.chdir(INVALID)
    expected = (INVALID / f"{case}.expected").read_text(encoding="utf-8")
    got = "".join(f"{p}\n" for p in check_rules([f"{case}.yaml"], known_metrics=KNOWN))
    assert got == expected


def test_loader_every_invalid_fixture_has_expected_file() -> None:
    """No fixture is silently skipped: each *.yaml has a non-empty .expected beside it."""
    assert CASES
    for case in CASES:
        assert (INVALID / f"{case}.expected").read_text(encoding="utf-8").strip(), case


def test_loader_shipped_packs_load_without_problems() -> None:
    """The six default packs in rules/ are valid against the simulators' metric vocabulary."""
    assert check_rules([ROOT / "rules"], known_metrics=KNOWN) == []
    ruleset = load_rules([ROOT / "rules"], known_metrics=KNOWN)
    domains = {r.domain for r in ruleset.rules}
    assert domains == set(KNOWN)
    assert len(ruleset.files) == 6


def test_loader_shipped_packs_have_titles_owners_playbooks_and_nodata() -> None:
    """Every shipped rule says what to do and who acts; every pack watches for silent sensors."""
    ruleset = load_rules([ROOT / "rules"])
    for rule in ruleset.rules:
        assert rule.title and rule.owner and rule.playbook.strip() and rule.message, rule.id
    for domain in KNOWN:
        assert any(r.kind == "nodata" and r.domain == domain for r in ruleset.rules), domain


def test_loader_shipped_thresholds_match_reference() -> None:
    """Key default thresholds are the REFERENCE.md numbers."""
    rules = load_rules([ROOT / "rules"]).by_id()

    def bounds(rule_id: str) -> dict[str, float]:
        t = rules[rule_id].thresholds
        assert t is not None
        return {level.colour: bound for level, bound in t.levels}

    assert bounds("gas.methane.high") == {"blue": 5, "yellow": 10, "orange": 20, "red": 50}
    assert bounds("drainage.ponding.depth") == {"blue": 5, "yellow": 15, "orange": 25, "red": 30}
    assert bounds("bridge.f1.drop") == {"blue": 3, "yellow": 5, "orange": 10, "red": 15}
    assert bounds("crowd.density.high") == {"blue": 1, "yellow": 2, "orange": 4, "red": 5}
    assert bounds("crowd.occupancy.high") == {"blue": 50, "yellow": 60, "orange": 80, "red": 100}
    assert bounds("elevator.car.overspeed") == {"red": 1.15}
    trapped = rules["elevator.car.trapped"]
    assert (trapped.level, trapped.for_s) == (Level.RED, 90.0)
    between = rules["elevator.car.trapped_between_floors"]
    assert (between.level, between.for_s) == (Level.RED, 15.0)


def test_loader_bridge_value_corrects_temperature() -> None:
    """bridge.f1.drop reads freq1_hz and temp_c as metrics and f1_ref_hz as a label."""
    rule = load_rules([ROOT / "rules"]).by_id()["bridge.f1.drop"]
    assert rule.metrics == ("freq1_hz", "temp_c")
    assert rule.value is not None
    # At 30 °C the reference falls by 2 %, so a 2 % lower f1 is no drop at all.
    assert rule.value({"freq1_hz": 4.9, "f1_ref_hz": 5.0, "temp_c": 30.0}) == pytest.approx(0.0, abs=1e-9)
    assert rule.value({"freq1_hz": 4.5, "f1_ref_hz": 5.0, "temp_c": 20.0}) == pytest.approx(10.0)


def test_loader_compiles_every_field(tmp_path: Path) -> None:
    """A valid pack compiles into Rules with kinds, metrics, matches, timers, defaults and source."""
    path = write(tmp_path, "gas.yaml", GOOD)
    rules = load_rules([path]).by_id()
    high = rules["gas.methane.high"]
    assert high.kind == "threshold" and high.domain == "gas"
    assert high.metrics == ("ch4_lel",) and high.value is None
    assert high.thresholds == Thresholds("above", ((Level.BLUE, 5.0), (Level.RED, 50.0)), 2.0)
    assert high.labels == {"well_type": "sewer", "ring": "2"}
    assert high.asset_types == frozenset({"manhole"}) and high.sensors == frozenset({"g-1"})
    assert (high.for_s, high.clear_for_s) == (60.0, 30.0)
    assert high.owner == "gas_company" and high.playbook == "Ventilate."
    assert high.source == f"{path}:4"
    dev = rules["gas.pressure.deviation"]
    assert dev.metrics == ("pressure_mpa",) and dev.owner == "gas_control"
    assert dev.message == "{title} at {sensor}"
    nodata = rules["gas.sensor.nodata"]
    assert (nodata.kind, nodata.nodata_after_s, nodata.level, nodata.for_s) == ("nodata", 900.0, Level.BLUE, 0.0)
    assert nodata.metrics == ("ch4_lel",)


def test_loader_directory_loads_sorted_yaml(tmp_path: Path) -> None:
    """A directory means all its *.yaml files, sorted by name."""
    write(tmp_path, "b.yaml", GOOD)
    write(tmp_path, "a.yaml", GOOD.replace("gas", "water").replace("ch4_lel", "flow_m3h"))
    write(tmp_path, "notes.txt", "not a pack")
    ruleset = load_rules([tmp_path])
    assert ruleset.files == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert [r.domain for r in ruleset.rules] == ["water"] * 3 + ["gas"] * 3


def test_loader_duplicate_id_across_files_names_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule id reused in another pack is reported at the second, naming the first file:line."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "one.yaml", GOOD)
    write(tmp_path, "two.yaml", GOOD)
    problems = [str(p) for p in check_rules(["one.yaml", "two.yaml"])]
    assert problems == [
        "two.yaml:4:9: rules[0].id: duplicate rule id 'gas.methane.high' (first at one.yaml:4)",
        "two.yaml:14:9: rules[1].id: duplicate rule id 'gas.pressure.deviation' (first at one.yaml:14)",
        "two.yaml:21:9: rules[2].id: duplicate rule id 'gas.sensor.nodata' (first at one.yaml:21)",
    ]


def test_loader_raises_rules_error_with_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_rules raises RulesError whose str() is one problem per line, over all files."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a.yaml", GOOD.replace("for: 1m", "for: 1 minute"))
    write(tmp_path, "b.yaml", GOOD.replace("gas", "water").replace("level", "levle"))
    with pytest.raises(RulesError) as info:
        load_rules(["a.yaml", "b.yaml", "missing.yaml"])
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems) >= 3
    assert lines[0] == "a.yaml:2:37: defaults.for: expected a duration like '30s', '5m' or '1h' (got '1 minute')"
    assert any(line.startswith("b.yaml:") for line in lines)
    assert lines[-1].startswith("missing.yaml: cannot read:")


def test_loader_nodata_accepts_interval_multiple(tmp_path: Path) -> None:
    """nodata.after '3x' is a multiple of the sensor's interval; other rules inherit no 'for'."""
    text = "domain: gas\ndefaults: {owner: o}\nrules:\n  - {id: gas.sensor.nodata, title: t, nodata: {after: 2.5x}}\n"
    rule = load_rules([write(tmp_path, "g.yaml", text)]).rules[0]
    assert (rule.nodata_intervals, rule.nodata_after_s, rule.metrics) == (2.5, None, ())


def test_loader_empty_directory_is_a_problem(tmp_path: Path) -> None:
    """A directory with no *.yaml is reported instead of loading nothing silently."""
    problems = check_rules([tmp_path])
    assert [p.message for p in problems] == ["no *.yaml rule files in this directory"]


def test_loader_without_known_metrics_accepts_any_metric(tmp_path: Path) -> None:
    """Metric names are only checked when a vocabulary is given."""
    path = write(tmp_path, "g.yaml", GOOD.replace("ch4_lel", "methane_ppm"))
    assert check_rules([path]) == []
    assert len(check_rules([path], known_metrics=KNOWN)) == 2
