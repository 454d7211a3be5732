"""The sensor registry: which sensors exist, where, what they measure, who owns them.

Pure data once loaded; lookups are dict reads on the hot path. This module holds the model
(``Registry``, ``District``, ``RegistryError``) and must never read files or import a parser: the
loaders for what a city exports (a CSV or YAML asset register, a GeoJSON of district polygons)
live in ``lifeline.registry.files`` and ``lifeline.registry.geojson``.

Loading never stops at the first problem: every problem is collected, each naming the file, the
line (and column or field) and the offending value, and one ``RegistryError`` lists them all::

    sensors.csv:17: column lon: expected a number (got 'abc')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lifeline.errors import ConfigError
from lifeline.model import Sensor

Ring = tuple[tuple[float, float], ...]


class RegistryError(ConfigError):
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
        return any(in_ring(ring, lon, lat) for ring in (self.parts or (self.polygon,)))


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


def in_ring(ring: Ring, lon: float, lat: float) -> bool:
    """Is (lon, lat) inside the ring of (lon, lat) points? (even-odd rule; district polygons, silence areas)"""
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % n]
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside
