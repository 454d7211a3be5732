"""Per-sensor engine state and the small pure helpers the evaluators share. No I/O, no clock."""

from __future__ import annotations

from collections.abc import Callable

from lifeline.engine.lifecycle import Lifecycle, Transition
from lifeline.model import AlertEvent, Sensor
from lifeline.rules.model import Rule

Evaluator = Callable[["SensorState", float, list[AlertEvent]], None]
#: (rule, lifecycle, transition, triggering sensor, event time, value, output list) -> appends one AlertEvent
Emit = Callable[[Rule, Lifecycle, Transition, "SensorState", float, "float | None", list[AlertEvent]], None]


class Values(dict[str, float]):
    """A sensor's latest metric values; a name that is not a metric falls back to the sensor's
    numeric registry labels (``f1_ref_hz``), so compiled expressions read one mapping."""

    __slots__ = ("labels",)

    def __init__(self, labels: dict[str, float]) -> None:
        super().__init__()
        self.labels = labels

    def __missing__(self, key: str) -> float:
        return self.labels[key]


class SensorState:
    __slots__ = ("binds", "by_rule", "domain", "due_at", "id", "labels", "last_seen", "mseq", "mts", "nodata",
                 "nodata_after", "sensor", "stale", "values")

    def __init__(self, sid: str, domain: str, sensor: Sensor | None) -> None:
        self.id = sid
        self.domain = domain
        self.sensor = sensor
        self.labels = numeric_labels(sensor)
        self.values = Values(self.labels)
        self.mts: dict[str, float] = {}
        self.mseq: dict[str, int] = {}
        self.last_seen: float | None = None
        self.binds: dict[str, dict[Evaluator, None]] = {}  # metric -> evaluators (an ordered set)
        self.by_rule: dict[str, Evaluator] = {}
        self.nodata: list[tuple[Rule, Lifecycle]] | None = None
        self.nodata_after = float("inf")  # the shortest staleness limit of its nodata rules
        self.stale = False  # a nodata alert is open for this sensor
        self.due_at: float | None = None  # the key of its live entry on the staleness scan's agenda, if any


def numeric_labels(sensor: Sensor | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if sensor is None:
        return out
    for k, v in sensor.labels.items():
        try:
            out[k] = float(v)
        except ValueError:
            continue
    return out


def rule_applies(rule: Rule, sid: str, domain: str, s: Sensor | None) -> bool:
    """Does ``rule`` watch this sensor (domain, sensor ids, asset types, label equality)?"""
    if rule.domain != domain:
        return False
    if rule.sensors is not None and sid not in rule.sensors:
        return False
    if rule.asset_types is not None and (s is None or s.asset_type not in rule.asset_types):
        return False
    return all(s is not None and s.labels.get(k) == v for k, v in rule.labels.items())


def group_of(rule: Rule, s: Sensor | None) -> str | None:
    """The sensor's group for a neighbourhood rule: its asset, district or a label's value."""
    hood = rule.neighbourhood
    if s is None or hood is None:
        return None
    if hood.group_by == "asset":
        return s.asset or None
    if hood.group_by == "district":
        return s.district or None
    return s.labels.get(hood.group_by) or None
