"""Scenarios: what to simulate (when, how long, which sensors), which incidents and faults to
inject, and which alerts the default rule packs must raise. Loaded from YAML (format in
``simulators/README.md``); every problem is reported at once as ``file: path: message``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lifeline.model import LEVEL_NAMES, Sensor
from lifeline.registry import Registry
from lifeline.timefmt import TimeFormatError, parse_duration, parse_ts
from simulators.base import Incident
from simulators.faults import FAULT_KINDS, Fault


class ScenarioError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class Selection:
    """Which sensors run: all (every field empty) or the union of the listed domains/districts/ids/assets,
    intersected with ``domains`` when given together with districts."""

    domains: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()

    def pick(self, registry: Registry) -> list[Sensor]:
        chosen = []
        for s in registry.sensors.values():
            if self.ids or self.assets:
                if s.id in self.ids or s.asset in self.assets:
                    chosen.append(s)
                continue
            if (not self.domains or s.domain in self.domains) and (
                not self.districts or s.district in self.districts
            ):
                chosen.append(s)
        return sorted(chosen, key=lambda s: s.id)


@dataclass(frozen=True, slots=True)
class Expect:
    rule: str
    sensor: str
    level: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "sensor": self.sensor, "level": self.level}


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    start: float
    duration: float
    seed: int
    description: str = ""
    selection: Selection = Selection()
    incidents: tuple[Incident, ...] = ()
    faults: tuple[Fault, ...] = ()
    expect: tuple[Expect, ...] = ()
    incident_expect: Mapping[int, tuple[Expect, ...]] = field(default_factory=dict)
    source: str = ""

    @property
    def end(self) -> float:
        return self.start + self.duration


def builtin_names() -> list[str]:
    folder = resources.files("simulators") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def find(name_or_path: str) -> Path:
    """A scenario file: a path, or the name of a built-in (``quiet``, ``demo``, ...)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return Path(str(resources.files("simulators") / "scenarios" / f"{name_or_path}.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    path = find(str(name_or_path))
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        known = ", ".join(builtin_names())
        raise ScenarioError([f"{path}: cannot read scenario ({exc.strerror}); built-ins: {known}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{path}: invalid YAML: {exc}"]) from None
    return parse_scenario(doc, str(path))


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def err(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")

    def number(self, value: object, where: str, default: float = 0.0) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.err(where, f"expected a number (got {value!r})")
            return default
        return float(value)

    def duration(self, value: object, where: str, default: float = 0.0) -> float:
        if value is None:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return parse_duration(str(value))
        except TimeFormatError as exc:
            self.err(where, str(exc))
            return default

    def moment(self, value: object, where: str, base: float) -> float:
        """An offset from the scenario start ('2m', 120) or an absolute RFC 3339 time."""
        if isinstance(value, str) and ("T" in value or "-" in value[1:]):
            try:
                return parse_ts(value)
            except TimeFormatError as exc:
                self.err(where, str(exc))
                return base
        return base + self.duration(value, where)

    def strings(self, value: object, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.err(where, f"expected a name or a list of names (got {value!r})")
        return ()


def parse_scenario(doc: object, source: str = "<scenario>") -> Scenario:
    from simulators.domains import INCIDENTS

    r = _Reader(source)
    if not isinstance(doc, dict):
        raise ScenarioError([f"{source}: expected a mapping at the top level"])
    known = {"name", "description", "start", "duration", "seed", "sensors", "incidents", "faults", "expect"}
    for key in doc:
        if key not in known:
            r.err(str(key), f"unknown key; expected one of {', '.join(sorted(known))}")
    start = 0.0
    try:
        start = parse_ts(doc.get("start", "2026-07-15T08:00:00+08:00"))
    except TimeFormatError as exc:
        r.err("start", str(exc))
    duration = r.duration(doc.get("duration", "1h"), "duration", 3600.0)
    seed = int(r.number(doc.get("seed", 1), "seed", 1.0))
    selection = _selection(r, doc.get("sensors", "all"))
    incidents: list[Incident] = []
    incident_expect: dict[int, tuple[Expect, ...]] = {}
    for i, item in enumerate(_items(r, doc.get("incidents"), "incidents")):
        where = f"incidents[{i}]"
        kind = str(item.get("kind", ""))
        if kind not in INCIDENTS:
            r.err(f"{where}.kind", f"unknown incident kind {kind!r}; expected one of {', '.join(sorted(INCIDENTS))}")
        begin = r.moment(item.get("start", 0), f"{where}.start", start)
        length = r.duration(item.get("duration", "10m"), f"{where}.duration", 600.0)
        incidents.append(Incident(
            index=i, kind=kind, target=str(item.get("target", "")), start=begin, end=begin + length,
            magnitude=r.number(item.get("magnitude"), f"{where}.magnitude", 1.0),
            params=_params(r, item.get("params"), f"{where}.params"),
        ))
        incident_expect[i] = _expects(r, item.get("expect"), f"{where}.expect")
    faults: list[Fault] = []
    for i, item in enumerate(_items(r, doc.get("faults"), "faults")):
        where = f"faults[{i}]"
        kind = str(item.get("kind", ""))
        if kind not in FAULT_KINDS:
            r.err(f"{where}.kind", f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        begin = r.moment(item.get("start", 0), f"{where}.start", start)
        length = r.duration(item.get("duration", "10m"), f"{where}.duration", 600.0)
        metric = item.get("metric")
        faults.append(Fault(index=i, kind=kind, sensor=str(item.get("sensor", "")), start=begin,
                            end=begin + length, metric=None if metric is None else str(metric),
                            params=_params(r, item.get("params"), f"{where}.params")))
    expect = _expects(r, doc.get("expect"), "expect")
    if r.problems:
        raise ScenarioError(r.problems)
    return Scenario(
        name=str(doc.get("name", Path(source).stem)), description=str(doc.get("description", "")),
        start=start, duration=duration, seed=seed, selection=selection, incidents=tuple(incidents),
        faults=tuple(faults), expect=expect, incident_expect=incident_expect, source=source,
    )


def _items(r: _Reader, value: object, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        r.err(where, "expected a list of mappings")
        return []
    return value


def _params(r: _Reader, value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        r.err(where, f"expected a mapping (got {value!r})")
        return {}
    out: dict[str, Any] = {}
    for key, raw in value.items():
        out[str(key)] = r.duration(raw, f"{where}.{key}") if isinstance(raw, str) else raw
    return out


def _selection(r: _Reader, value: object) -> Selection:
    if value in (None, "all"):
        return Selection()
    if not isinstance(value, dict):
        r.err("sensors", f"expected 'all' or a mapping with domains/districts/ids/assets (got {value!r})")
        return Selection()
    for key in value:
        if key not in ("domains", "districts", "ids", "assets"):
            r.err(f"sensors.{key}", "unknown key; expected domains, districts, ids or assets")
    return Selection(*(r.strings(value.get(k), f"sensors.{k}") for k in ("domains", "districts", "ids", "assets")))


def _expects(r: _Reader, value: object, where: str) -> tuple[Expect, ...]:
    out: list[Expect] = []
    for i, item in enumerate(_items(r, value, where)):
        level = str(item.get("level", ""))
        if level not in LEVEL_NAMES:
            r.err(f"{where}[{i}].level", f"expected one of {', '.join(LEVEL_NAMES)} (got {level!r})")
        out.append(Expect(rule=str(item.get("rule", "")), sensor=str(item.get("sensor", "")), level=level))
    return tuple(out)


def check_targets(scenario: Scenario, registry: Registry, problems: list[str]) -> None:
    """Fault sensors and expect sensors must exist in the registry."""
    for f in scenario.faults:
        if f.sensor not in registry.sensors:
            problems.append(f"{scenario.source}: faults[{f.index}].sensor: unknown sensor {f.sensor!r}")
