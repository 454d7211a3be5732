"""Shared pieces of the domain models: per-sensor seeded generators, local time, effects.

Nothing here reads the wall clock: every function is a pure function of its arguments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifeline.model import Sensor
from lifeline.registry import Registry

Array = NDArray[np.float64]

#: Hefei local time is UTC+8 (no DST); diurnal cycles follow local clock time.
UTC_OFFSET_S = 8 * 3600.0


def sensor_rng(seed: int, sensor_id: str, stream: str = "main") -> np.random.Generator:
    """A generator owned by one sensor: derived from (seed, sensor id, stream) only, so a sensor's
    numbers never depend on which other sensors run or in which order."""
    digest = hashlib.sha256(f"{sensor_id}\x00{stream}".encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed & 0xFFFFFFFF, *words])))


def local_hours(ts: Array) -> Array:
    """Hour of day (0..24, fractional) in Hefei local time for epoch seconds ``ts``."""
    return np.asarray(((ts + UTC_OFFSET_S) % 86400.0) / 3600.0, dtype=np.float64)


def sample_times(rng: np.random.Generator, start: float, duration: float, interval: float) -> Array:
    """Reporting instants: a per-sensor phase in [0, interval), then every ``interval`` seconds."""
    phase = round(float(rng.uniform(0.0, interval)), 3)
    n = int(np.floor((duration - phase) / interval)) + 1 if duration > phase else 0
    return np.round(start + phase + interval * np.arange(max(n, 0), dtype=np.float64), 3)


def ar1(rng: np.random.Generator, n: int, rho: float, sigma: float) -> Array:
    """A stationary AR(1) series with lag-1 correlation ``rho`` and marginal std ``sigma``."""
    from scipy.signal import lfilter

    if n == 0:
        return np.zeros(0)
    e = rng.normal(0.0, sigma * np.sqrt(1.0 - rho * rho), n)
    e[0] = rng.normal(0.0, sigma)
    return np.asarray(lfilter([1.0], [1.0, -rho], e), dtype=np.float64)


def window(ts: Array, start: float, end: float) -> NDArray[np.bool_]:
    return np.asarray((ts >= start) & (ts < end))


def smoothstep(x: Array) -> Array:
    c = np.clip(x, 0.0, 1.0)
    return np.asarray(c * c * (3.0 - 2.0 * c), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Effect:
    """One incident as felt by one sensor: already delayed and attenuated for that sensor."""

    kind: str
    sensor: str
    start: float
    end: float
    magnitude: float
    params: Mapping[str, Any] = field(default_factory=dict)
    incident: int = 0  # index of the incident in the scenario

    def param(self, name: str, default: float) -> float:
        return float(self.params.get(name, default))


def label(sensor: Sensor, name: str, default: float) -> float:
    """A numeric sensor label, or ``default`` when absent or not a number."""
    try:
        return float(sensor.labels.get(name, default))
    except ValueError:
        return default


Metrics = dict[str, Array]


@dataclass(frozen=True, slots=True)
class Incident:
    """A scenario incident with absolute times (epoch seconds)."""

    index: int
    kind: str
    target: str
    start: float
    end: float
    magnitude: float
    params: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str, default: float) -> float:
        return float(self.params.get(name, default))


def diurnal(hours: Array, profile: tuple[float, ...], damp: float = 1.0) -> Array:
    """An hourly profile (value i = hour ending at i+1 o'clock, local time) linearly interpolated,
    normalised to mean 1 and damped toward 1 by ``damp`` (1 = as given, 0 = flat)."""
    p = np.asarray(profile, dtype=np.float64)
    p = p / p.mean()
    # value i is centred on the end of hour i+1 (Roberts 2005 lists 01:00..24:00)
    knots = np.arange(1.0, 25.0)
    x = np.concatenate(([0.0], knots))
    y = np.concatenate(([p[-1]], p))
    return np.asarray(1.0 + damp * (np.interp(hours, x, y) - 1.0), dtype=np.float64)


#: Roberts 2005 (Yarra Valley Water): relative likelihood of residential water-use events by hour,
#: 01:00..24:00 (REFERENCE §2.2 [W9]). Normalised to mean 1: ~2.0 at 09:00, ~0.1 at 04:00-06:00.
ROBERTS_2005: tuple[float, ...] = (
    200, 100, 50, 30, 30, 30, 90, 270, 600, 500, 480, 430,
    390, 290, 250, 230, 240, 280, 450, 400, 330, 340, 310, 240,
)


def resolve(registry: Registry, target: str, domain: str, metric: str | None = None) -> list[Sensor]:
    """Sensors of ``domain`` named by ``target``: a sensor id, an asset id, a district id, or ``all``;
    optionally only those measuring ``metric``. Sorted by id."""
    pool: Sequence[Sensor] = [s for s in registry.sensors.values() if s.domain == domain]
    if metric is not None:
        pool = [s for s in pool if metric in s.metrics]
    for field_name in ("id", "asset", "district"):
        found = sorted((s for s in pool if getattr(s, field_name) == target or (
            field_name == "district" and target == "all")), key=lambda s: s.id)
        if found:
            return found
    return []
