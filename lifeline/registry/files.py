"""The sensor register (CSV or YAML) -> sensors, and ``load_registry``: register + districts -> ``Registry``.

Every problem in every file is collected, each naming the file, the line (and column or field)
and the offending value, and raised once as one ``RegistryError``; a loader never stops at the
first problem and never returns a half-checked sensor. YAML is read with the safe loader only,
so a register can never construct objects or run code. District polygons are read by
``lifeline.registry.geojson``. Import these from ``lifeline.registry``, which re-exports them.
"""

from __future__ import annotations

import csv
import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import yaml

from lifeline.model import Sensor
from lifeline.registry.core import Registry, RegistryError
from lifeline.registry.geojson import load_districts_geojson as load_districts_geojson
from lifeline.registry.geojson import read_districts

COLUMNS: tuple[str, ...] = (
    "id", "domain", "district", "lon", "lat", "asset", "asset_type", "owner", "interval_s", "metrics", "labels",
)
_REQUIRED: frozenset[str] = frozenset({"id", "domain", "lon", "lat", "metrics"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ID = re.compile(r"^[^\s/+#]+$")  # usable as one MQTT topic level

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
    districts = read_districts(Path(districts_path), problems) if districts_path is not None else []
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
