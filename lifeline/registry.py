"""The sensor registry: which sensors exist, where, what they measure, who owns them.

Loaded from what a city exports: a CSV (or YAML) asset register and a GeoJSON of district
polygons. Pure data once loaded; lookups are dict reads on the hot path.

Loading never stops at the first problem: every problem is collected, each naming the file, the
line (and column or field) and the offending value, and one ``RegistryError`` lists them all::

    sensors.csv:17: column lon: expected a number (got 'abc')
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lifeline.model import Sensor

Ring = tuple[tuple[float, float], ...]

COLUMNS: tuple[str, ...] = (
    "id", "domain", "district", "lon", "lat", "asset", "asset_type", "owner", "interval_s", "metrics", "labels",
)
_REQUIRED: frozenset[str] = frozenset({"id", "domain", "lon", "lat", "metrics"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ID = re.compile(r"^[^\s/+#]+$")  # usable as one MQTT topic level


class RegistryError(ValueError):
    """One or more problems in registry files; ``problems`` lists them all, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class District:
    id: str
    name: str
    polygon: Ring  # outer ring, (lon, lat); for a MultiPolygon, the largest part's
    properties: Mapping[str, Any] = field(default_factory=dict)
    parts: tuple[Ring, ...] = ()  # every outer ring (MultiPolygon); empty means (polygon,)

    def contains(self, lon: float, lat: float) -> bool:
        """Point-in-polygon (even-odd) over every outer ring; holes are ignored."""
        return any(_in_ring(ring, lon, lat) for ring in (self.parts or (self.polygon,)))


class Registry:
    """Sensors by id, districts by id, and the set of known domains.

    ``strict``: readings from sensors not in the registry are dead-lettered (``unknown_sensor``).
    """

    def __init__(
        self,
        sensors: Iterable[Sensor] = (),
        districts: Iterable[District] = (),
        *,
        domains: Iterable[str] = (),
        strict: bool = True,
    ) -> None:
        self.sensors: dict[str, Sensor] = {s.id: s for s in sensors}
        self.districts: dict[str, District] = {d.id: d for d in districts}
        self.domains: frozenset[str] = frozenset(domains) | {s.domain for s in self.sensors.values()}
        self.strict = strict
        self._numeric: dict[str, dict[str, float]] = {}

    def get(self, sensor_id: str) -> Sensor | None:
        return self.sensors.get(sensor_id)

    def __len__(self) -> int:
        return len(self.sensors)

    def numeric_labels(self, sensor_id: str) -> dict[str, float]:
        """The sensor's labels that parse as finite numbers (``p_set_mpa=0.3`` -> 0.3), cached.

        Labels stay strings on ``Sensor``; rules that compare against a label (gas set pressure,
        bridge reference frequency) read them here. An unknown sensor has no labels: ``{}``.
        """
        cached = self._numeric.get(sensor_id)
        if cached is None:
            sensor = self.sensors.get(sensor_id)
            cached = {} if sensor is None else _numeric(sensor.labels)
            self._numeric[sensor_id] = cached
        return cached

    def district_at(self, lon: float, lat: float) -> District | None:
        """The first district (in id order) whose polygon contains the point."""
        for key in sorted(self.districts):
            if self.districts[key].contains(lon, lat):
                return self.districts[key]
        return None


def _numeric(labels: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, text in labels.items():
        try:
            value = float(text)
        except ValueError:
            continue
        if math.isfinite(value):
            out[key] = value
    return out


def _in_ring(ring: Ring, lon: float, lat: float) -> bool:
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % n]
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


# ---------------------------------------------------------------------------------------- sensors

Where = Callable[[str], str]  # field name -> "file:line: column x" prefix
_Loaded = list[tuple[Sensor, Where, str]]  # (sensor, where its fields are, "file:line" location)


class _SensorBuilder:
    """Validates one record's raw fields into a Sensor, appending problems (never raising)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def build(self, raw: Mapping[str, object], where: Where) -> Sensor | None:
        before = len(self.problems)
        missing = [name for name in COLUMNS if name in _REQUIRED and _blank(raw.get(name))]
        for name in missing:
            self.problems.append(f"{where(name)}: required, must not be empty")
        sid = _text(raw.get("id"))
        if sid and not _ID.match(sid):
            self.problems.append(f"{where('id')}: must not contain spaces, '/', '+' or '#' (got {sid!r})")
        lon = self._number(raw, "lon", where, -180.0, 180.0)
        lat = self._number(raw, "lat", where, -90.0, 90.0)
        interval = 60.0 if _blank(raw.get("interval_s")) else self._number(raw, "interval_s", where, 0.0, None)
        metrics = self._pairs(raw.get("metrics"), ":", "metrics", where, "name:unit;name:unit")
        labels = self._pairs(raw.get("labels"), "=", "labels", where, "key=value;key=value")
        if len(self.problems) > before or lon is None or lat is None or interval is None:
            return None
        return Sensor(
            id=sid, domain=_text(raw.get("domain")), district=_text(raw.get("district")), lon=lon, lat=lat,
            asset=_text(raw.get("asset")), asset_type=_text(raw.get("asset_type")),
            owner=_text(raw.get("owner")), interval_s=interval, metrics=metrics, labels=labels,
        )

    def _number(self, raw: Mapping[str, object], name: str, where: Where,
                low: float | None, high: float | None) -> float | None:
        value = raw.get(name)
        if _blank(value):
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.problems.append(f"{where(name)}: expected a number (got {_show(value)})")
            return None
        if not math.isfinite(number):
            self.problems.append(f"{where(name)}: expected a finite number (got {_show(value)})")
        elif low is not None and high is not None and not low <= number <= high:
            self.problems.append(f"{where(name)}: expected a number in [{low:g}, {high:g}] (got {_show(value)})")
        elif low is not None and high is None and number <= low:
            self.problems.append(f"{where(name)}: expected a number > {low:g} (got {_show(value)})")
        else:
            return number
        return None

    def _pairs(self, value: object, sep: str, name: str, where: Where, shape: str) -> dict[str, str]:
        if _blank(value):
            return {}
        if isinstance(value, Mapping):
            items = [(str(k), "" if v is None else _scalar(v)) for k, v in value.items()]
        elif isinstance(value, str):
            items = []
            for part in (p.strip() for p in value.split(";")):
                if not part:
                    continue
                key, found, val = part.partition(sep)
                if not found and sep == "=":
                    self.problems.append(f"{where(name)}: expected {shape} (got {part!r})")
                    continue
                items.append((key.strip(), val.strip()))
        else:
            self.problems.append(f"{where(name)}: expected {shape} or a mapping (got {_show(value)})")
            return {}
        out: dict[str, str] = {}
        for key, val in items:
            if not _NAME.match(key):
                self.problems.append(f"{where(name)}: {key!r} is not a valid name (letters, digits, '_')")
            elif key in out:
                self.problems.append(f"{where(name)}: {key!r} given twice")
            else:
                out[key] = val
        return out


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else repr(_scalar(value))


def _sensors_csv(path: Path, problems: list[str]) -> _Loaded:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: cannot read: {exc}")
        return []
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if header is None:
        problems.append(f"{name}:1: empty file, expected a header line: {','.join(COLUMNS)}")
        return []
    header = [h.strip() for h in header]
    for col in COLUMNS:
        if col in _REQUIRED and col not in header:
            problems.append(f"{name}:1: missing column {col!r}")
    for col in header:
        if col not in COLUMNS:
            problems.append(f"{name}:1: unknown column {col!r}{_suggest(col, COLUMNS)}")
    if any(p.startswith(f"{name}:1:") for p in problems):
        return []
    builder = _SensorBuilder(problems)
    out: _Loaded = []
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) != len(header):
            problems.append(f"{name}:{line}: expected {len(header)} fields, got {len(row)}")
            continue
        raw = dict(zip(header, row, strict=True))

        def where(col: str, line: int = line) -> str:
            return f"{name}:{line}: column {col}"

        sensor = builder.build(raw, where)
        if sensor is not None:
            out.append((sensor, where, f"{name}:{line}"))
    return out


def _sensors_yaml(path: Path, problems: list[str]) -> _Loaded:
    name = str(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: cannot read: {exc}")
        return []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problems.append(f"{at}: invalid YAML: {exc.problem}")
        return []
    prefix = "sensors"
    if isinstance(root, yaml.MappingNode):
        items = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
        root = items.get("sensors")
    if not isinstance(root, yaml.SequenceNode):
        problems.append(f"{name}:1:1: expected a list of sensors (or a mapping with key 'sensors')")
        return []
    builder = _SensorBuilder(problems)
    constructor = yaml.SafeLoader("")
    out: _Loaded = []
    for index, node in enumerate(root.value):
        here = f"{name}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"
        if not isinstance(node, yaml.MappingNode):
            problems.append(f"{here}: {prefix}[{index}]: expected a mapping")
            continue
        raw: dict[str, object] = {}
        marks: dict[str, str] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key not in COLUMNS:
                at = f"{name}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}"
                problems.append(f"{at}: {prefix}[{index}].{key}: unknown field{_suggest(key, COLUMNS)}")
                continue
            raw[key] = constructor.construct_object(value_node, deep=True)
            marks[key] = f"{name}:{value_node.start_mark.line + 1}:{value_node.start_mark.column + 1}"

        def where(col: str, marks: dict[str, str] = marks, here: str = here, index: int = index) -> str:
            return f"{marks.get(col, here)}: {prefix}[{index}].{col}"

        sensor = builder.build(raw, where)
        if sensor is not None:
            out.append((sensor, where, here))
    return out


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _load_sensors(path: str | Path, problems: list[str], kind: str = "") -> _Loaded:
    p = Path(path)
    kind = kind or p.suffix.lower()
    if kind in (".yaml", ".yml"):
        loaded = _sensors_yaml(p, problems)
    elif kind == ".csv":
        loaded = _sensors_csv(p, problems)
    else:
        problems.append(f"{p}: unknown sensor file type {p.suffix!r} (expected .csv, .yaml or .yml)")
        return []
    seen: dict[str, str] = {}
    unique: _Loaded = []
    for sensor, where, at in loaded:
        if sensor.id in seen:
            problems.append(f"{where('id')}: duplicate sensor id {sensor.id!r} (first at {seen[sensor.id]})")
        else:
            seen[sensor.id] = at
            unique.append((sensor, where, at))
    return unique


def load_sensors_csv(path: str | Path) -> list[Sensor]:
    """Sensors from a CSV asset register (columns ``COLUMNS``); raise RegistryError listing every problem."""
    problems: list[str] = []
    sensors = _load_sensors(path, problems, ".csv")
    if problems:
        raise RegistryError(problems)
    return [s for s, _, _ in sensors]


def load_sensors_yaml(path: str | Path) -> list[Sensor]:
    """Sensors from YAML: a list (or ``sensors:`` list) of mappings with the CSV column names as keys;
    ``metrics`` and ``labels`` may be mappings or the CSV string forms."""
    problems: list[str] = []
    sensors = _load_sensors(path, problems, ".yaml")
    if problems:
        raise RegistryError(problems)
    return [s for s, _, _ in sensors]


# -------------------------------------------------------------------------------------- districts


def load_districts_geojson(path: str | Path) -> list[District]:
    """Districts from a GeoJSON FeatureCollection of Polygon / MultiPolygon features with
    ``properties.id`` and ``properties.name``; raise RegistryError listing every problem."""
    problems: list[str] = []
    districts = _load_districts(Path(path), problems)
    if problems:
        raise RegistryError(problems)
    return districts


def _load_districts(path: Path, problems: list[str]) -> list[District]:
    name = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: cannot read: {exc}")
        return []
    except json.JSONDecodeError as exc:
        problems.append(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}")
        return []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        problems.append(f"{name}: type: expected a GeoJSON FeatureCollection")
        return []
    features = doc.get("features")
    if not isinstance(features, list):
        problems.append(f"{name}: features: expected a list")
        return []
    out: list[District] = []
    seen: set[str] = set()
    for i, feature in enumerate(features):
        district = _district(feature, f"{name}: features[{i}]", problems)
        if district is None:
            continue
        if district.id in seen:
            problems.append(f"{name}: features[{i}].properties.id: duplicate district id {district.id!r}")
            continue
        seen.add(district.id)
        out.append(district)
    return out


def _district(feature: object, where: str, problems: list[str]) -> District | None:
    if not isinstance(feature, dict):
        problems.append(f"{where}: expected a Feature object")
        return None
    props = feature.get("properties")
    props = props if isinstance(props, dict) else {}
    ok = True
    for key in ("id", "name"):
        value = props.get(key)
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            problems.append(f"{where}.properties.{key}: required, a non-empty string (got {value!r})")
            ok = False
    rings = _rings(feature.get("geometry"), f"{where}.geometry", problems)
    if not ok or not rings:
        return None
    largest = max(rings, key=_ring_area)
    extra = {k: v for k, v in props.items() if k not in ("id", "name")}
    return District(id=str(props["id"]).strip(), name=str(props["name"]).strip(), polygon=largest,
                    properties=extra, parts=tuple(rings) if len(rings) > 1 else ())


def _rings(geometry: object, where: str, problems: list[str]) -> list[Ring]:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        got = geometry.get("type") if isinstance(geometry, dict) else geometry
        problems.append(f"{where}.type: expected 'Polygon' or 'MultiPolygon' (got {got!r})")
        return []
    coords = geometry.get("coordinates")
    polygons = [coords] if geometry["type"] == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        problems.append(f"{where}.coordinates: expected a non-empty list")
        return []
    rings: list[Ring] = []
    for j, polygon in enumerate(polygons):
        at = f"{where}.coordinates" + ("" if geometry["type"] == "Polygon" else f"[{j}]")
        ring = _ring(polygon[0] if isinstance(polygon, list) and polygon else None, f"{at}[0]", problems)
        if ring is not None:
            rings.append(ring)
    return rings


def _ring(raw: object, where: str, problems: list[str]) -> Ring | None:
    if not isinstance(raw, list) or len(raw) < 4:
        problems.append(f"{where}: expected a linear ring of at least 4 [lon, lat] positions")
        return None
    points: list[tuple[float, float]] = []
    for k, pos in enumerate(raw):
        if (not isinstance(pos, list) or len(pos) < 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos[:2])
                or not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90)):
            problems.append(f"{where}[{k}]: expected [lon, lat] in degrees (got {pos!r})")
            return None
        points.append((float(pos[0]), float(pos[1])))
    if points[0] != points[-1]:
        problems.append(f"{where}: ring is not closed (first {list(points[0])} != last {list(points[-1])})")
        return None
    return tuple(points[:-1])


def _ring_area(ring: Ring) -> float:
    n = len(ring)
    return abs(sum(ring[i][0] * ring[(i + 1) % n][1] - ring[(i + 1) % n][0] * ring[i][1] for i in range(n))) / 2


# --------------------------------------------------------------------------------------- registry


def load_registry(
    sensors_path: str | Path, districts_path: str | Path | None = None, *, strict: bool = True
) -> Registry:
    """A Registry from a sensor file (.csv / .yaml / .yml) and optionally a districts GeoJSON.

    With districts, every sensor's ``district`` must name one of them. Every problem in both
    files is reported at once in one RegistryError.
    """
    problems: list[str] = []
    loaded = _load_sensors(sensors_path, problems)
    districts = _load_districts(Path(districts_path), problems) if districts_path is not None else []
    if districts_path is not None and districts:
        known = {d.id for d in districts}
        for sensor, where, _ in loaded:
            if sensor.district not in known:
                problems.append(
                    f"{where('district')}: unknown district {sensor.district!r}{_suggest(sensor.district, known)}"
                )
    if problems:
        raise RegistryError(problems)
    return Registry((s for s, _, _ in loaded), districts, strict=strict)
