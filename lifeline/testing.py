"""Test doubles that ship with the package (fakes at the boundary, never mocks of internals).

Small builders for rules, sensors and readings so tests and benchmarks can state scenarios briefly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lifeline.model import Level, Reading, Sensor
from lifeline.registry import Registry
from lifeline.rules.model import Direction, Rule, Thresholds


@dataclass(frozen=True, slots=True)
class MetricExpr:
    """The expression that is just one metric name (what ``match: {metric: m}`` compiles to)."""

    source: str

    @property
    def names(self) -> frozenset[str]:
        return frozenset({self.source})

    def __call__(self, env: Mapping[str, float]) -> float:
        return env[self.source]


@dataclass(frozen=True, slots=True)
class LambdaExpr:
    source: str
    names: frozenset[str]
    fn: object

    def __call__(self, env: Mapping[str, float]) -> float:
        f = self.fn
        assert callable(f)
        return float(f(env))


def threshold_rule(
    rule_id: str = "gas.methane.high",
    metric: str = "ch4_lel",
    levels: Mapping[str, float] | None = None,
    *,
    domain: str | None = None,
    direction: Direction = "above",
    hysteresis: float = 0.0,
    for_s: float = 0.0,
    clear_for_s: float = 0.0,
    message: str = "{metric_name} {value:.1f} at {sensor}",
) -> Rule:
    lv = levels or {"blue": 5, "yellow": 10, "orange": 20, "red": 50}
    pairs = tuple(sorted(((Level.parse(k), float(v)) for k, v in lv.items()), key=lambda p: p[0]))
    return Rule(
        id=rule_id,
        domain=domain or rule_id.split(".")[0],
        kind="threshold",
        title=rule_id,
        source="<test>",
        metrics=(metric,),
        value=MetricExpr(metric),
        thresholds=Thresholds(direction, pairs, hysteresis),
        for_s=for_s,
        clear_for_s=clear_for_s,
        message=message.replace("{metric_name}", metric),
    )


def detector_rule(
    rule_id: str = "gas.methane.unstable",
    metric: str = "ch4_lel",
    detector: str = "robust_zscore",
    params: Mapping[str, object] | None = None,
    levels: Mapping[str, float] | None = None,
    *,
    on: str = "score",
    for_s: float = 0.0,
) -> Rule:
    """A threshold rule whose thresholds apply to a streaming detector's verdict."""
    from dataclasses import replace

    from lifeline.detectors import DETECTORS

    base = threshold_rule(rule_id, metric, levels or {"yellow": 0.6, "orange": 0.85}, for_s=for_s)
    return replace(base, detector=detector, detector_params=dict(params or {}),
                   detector_on="value" if on == "value" else "score", health=DETECTORS.get(detector).health)


def nodata_rule(rule_id: str = "gas.sensor.nodata", *, intervals: float = 3.0, level: Level = Level.BLUE) -> Rule:
    return Rule(id=rule_id, domain=rule_id.split(".")[0], kind="nodata", title=rule_id, source="<test>",
                level=level, nodata_intervals=intervals, message="no data from {sensor}")


def sensors(domain: str, n: int, *, interval_s: float = 60.0, district: str = "Luyang") -> list[Sensor]:
    return [Sensor(f"{domain}-{i:04d}", domain, district, 117.2, 31.8, interval_s=interval_s) for i in range(n)]


def registry_of(*groups: Iterable[Sensor], strict: bool = True) -> Registry:
    return Registry([s for g in groups for s in g], strict=strict)


def reading(sensor: str, value: float, ts: float, *, metric: str = "ch4_lel", domain: str = "gas",
            seq: int | None = None) -> Reading:
    return Reading(sensor, domain, metric, ts, float(value), seq)
