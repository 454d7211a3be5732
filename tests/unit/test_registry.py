"""Registry loading: the demo city, CSV/YAML/GeoJSON parsing, and exact error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifeline.registry import (
    RegistryError,
    load_districts_geojson,
    load_registry,
    load_sensors_csv,
    load_sensors_yaml,
)

DEMO = Path(__file__).resolve().parents[2] / "lifeline" / "data" / "demo_city"
HEADER = "id,domain,district,lon,lat,asset,asset_type,owner,interval_s,metrics,labels\n"
GOOD = "G1,gas,LY,117.3,31.9,MH1,manhole,gas_company,60,ch4_lel:%LEL;temp_c:degC,well_type=sewer;chainage_m=150\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _box(ident: str, name: str) -> dict[str, object]:
    ring = [[117.0, 31.0], [118.0, 31.0], [118.0, 32.0], [117.0, 32.0], [117.0, 31.0]]
    return {"type": "Feature", "properties": {"id": ident, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def test_registry_demo_city_loads_all_domains() -> None:
    """The committed demo city has >= 300 sensors in six domains and >= 6 districts, all consistent."""
    reg = load_registry(DEMO / "sensors.csv", DEMO / "districts.geojson")
    assert len(reg) >= 300 and len(reg.districts) >= 6
    assert reg.domains == {"gas", "water", "drainage", "bridge", "elevator", "crowd"}
    sensor = reg.sensors["LY-GAS-C1-W04"]
    assert reg.districts[sensor.district].contains(sensor.lon, sensor.lat)


def test_registry_csv_parses_metrics_labels_and_numeric_labels(tmp_path: Path) -> None:
    """metrics become name->unit, labels stay strings, numeric_labels gives the numbers (cached)."""
    (sensor,) = load_sensors_csv(_write(tmp_path, "sensors.csv", HEADER + GOOD))
    assert sensor.metrics == {"ch4_lel": "%LEL", "temp_c": "degC"}
    assert sensor.labels == {"well_type": "sewer", "chainage_m": "150"}
    reg = load_registry(tmp_path / "sensors.csv")
    assert reg.numeric_labels("G1") == {"chainage_m": 150.0}
    assert reg.numeric_labels("G1") is reg.numeric_labels("G1")
    assert reg.numeric_labels("nope") == {}


def test_registry_csv_errors_name_file_line_column_value(tmp_path: Path) -> None:
    """Every problem is collected and named exactly: file, line, column, value."""
    text = HEADER + GOOD + (
        "G2,gas,LY,abc,31.9,MH2,manhole,gas_company,60,ch4_lel:%LEL,\n"
        "G3,gas,LY,117.3,95,MH3,manhole,gas_company,-5,ch4_lel:%LEL,well_type\n"
        "G1,gas,LY,117.3,31.9,MH1,manhole,gas_company,60,ch4_lel:%LEL,\n"
        "G4,gas,LY,117.3\n"
        ",gas,LY,117.3,31.9,MH1,manhole,gas_company,60,,\n"
    )
    path = _write(tmp_path, "sensors.csv", text)
    with pytest.raises(RegistryError) as info:
        load_sensors_csv(path)
    assert info.value.problems == [
        f"{path}:3: column lon: expected a number (got 'abc')",
        f"{path}:4: column lat: expected a number in [-90, 90] (got '95')",
        f"{path}:4: column interval_s: expected a number > 0 (got '-5')",
        f"{path}:4: column labels: expected key=value;key=value (got 'well_type')",
        f"{path}:6: expected 11 fields, got 4",
        f"{path}:7: column id: required, must not be empty",
        f"{path}:7: column metrics: required, must not be empty",
        f"{path}:5: column id: duplicate sensor id 'G1' (first at {path}:2)",
    ]


def test_registry_csv_header_problems(tmp_path: Path) -> None:
    """A missing required column and a misspelt one are reported on line 1 with a suggestion."""
    path = _write(tmp_path, "s.csv", "id,domain,district,lon,latt,metrics\n")
    with pytest.raises(RegistryError) as info:
        load_sensors_csv(path)
    assert info.value.problems == [
        f"{path}:1: missing column 'lat'",
        f"{path}:1: unknown column 'latt' (did you mean 'lat'?)",
    ]


def test_registry_yaml_sensors_and_errors(tmp_path: Path) -> None:
    """YAML sensors accept mappings for metrics/labels; errors give file:line:col and the field path."""
    good = _write(tmp_path, "ok.yaml", (
        "sensors:\n"
        "  - {id: W1, domain: water, district: LY, lon: 117.3, lat: 31.9, metrics: {pressure_mpa: MPa},\n"
        "     labels: {p_normal_mpa: 0.3}}\n"
    ))
    (sensor,) = load_sensors_yaml(good)
    assert sensor.labels == {"p_normal_mpa": "0.3"} and sensor.interval_s == 60.0
    bad = _write(tmp_path, "bad.yaml", (
        "- id: W1\n"
        "  domain: water\n"
        "  lon: east\n"
        "  lat: 31.9\n"
        "  metrics: pressure_mpa:MPa\n"
        "  colour: red\n"
    ))
    with pytest.raises(RegistryError) as info:
        load_sensors_yaml(bad)
    assert info.value.problems == [
        f"{bad}:6:3: sensors[0].colour: unknown field",
        f"{bad}:3:8: sensors[0].lon: expected a number (got 'east')",
    ]


def test_registry_unknown_district_is_reported_with_suggestion(tmp_path: Path) -> None:
    """With a districts file, a sensor's district must exist; the message suggests the close one."""
    sensors = _write(tmp_path, "sensors.csv", HEADER + GOOD.replace(",LY,", ",LYY,"))
    districts = _write(tmp_path, "d.geojson", json.dumps(
        {"type": "FeatureCollection", "features": [_box("LY", "Luyang")]}))
    with pytest.raises(RegistryError) as info:
        load_registry(sensors, districts)
    assert info.value.problems == [f"{sensors}:2: column district: unknown district 'LYY' (did you mean 'LY'?)"]


def test_registry_geojson_multipolygon_and_errors(tmp_path: Path) -> None:
    """MultiPolygon districts contain points in any part; bad features are all reported."""
    multi = _box("BH", "Baohe")
    ring2 = [[119.0, 31.0], [119.5, 31.0], [119.5, 31.5], [119.0, 31.0]]
    multi["geometry"] = {"type": "MultiPolygon",
                         "coordinates": [multi["geometry"]["coordinates"], [ring2]]}  # type: ignore[index]
    path = _write(tmp_path, "d.geojson", json.dumps({"type": "FeatureCollection", "features": [multi]}))
    (district,) = load_districts_geojson(path)
    assert district.contains(117.5, 31.5) and district.contains(119.4, 31.1) and not district.contains(118.5, 31.5)
    bad_geom = _box("X", "X")
    bad_geom["geometry"] = {"type": "Point", "coordinates": [117, 31]}
    bad = _write(tmp_path, "bad.geojson", json.dumps(
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "N"},
                                                    "geometry": _box("a", "b")["geometry"]}, bad_geom]}))
    with pytest.raises(RegistryError) as info:
        load_districts_geojson(bad)
    assert info.value.problems == [
        f"{bad}: features[0].properties.id: required, a non-empty string (got None)",
        f"{bad}: features[1].geometry.type: expected 'Polygon' or 'MultiPolygon' (got 'Point')",
    ]
    broken = _write(tmp_path, "broken.geojson", '{"type": \n  nope}')
    with pytest.raises(RegistryError) as info:
        load_districts_geojson(broken)
    assert info.value.problems == [f"{broken}:2:3: invalid JSON: Expecting value"]
