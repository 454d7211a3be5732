"""Drainage: rainfall, underpass ponding depth, sewer fill ratio.

Rain is a Chicago (Keifer-Chu) design storm (REFERENCE §3.3) scaled to a total depth; gauges
report mm per 5 min ([D8]: gauges at <= 5 min). Ponding follows the rainfall *excess* over the
site's drainage capacity through a 5-15 min lag into a leaky storage, and the depth saturates as
water spreads (§3.3: "a lagged, saturating function of rainfall excess over drainage capacity").
A pump failure slows the drain-down, so depth stays high after the rain eases ([D1]-[D4] anomaly
signature). Sewers rise from their dry-weather fill toward surcharge in storms ([D6], [D9]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lifeline.model import Sensor
from lifeline.registry import Registry
from simulators.base import Array, Effect, Incident, Metrics, ar1, label, local_hours, resolve

DOMAIN = "drainage"
STEP_S = 30.0  # internal integration step


def storm_intensity(t: Array, e: Effect) -> Array:
    """Rain intensity (mm/h) of a Chicago design storm: ``magnitude`` mm over [start, end), the peak
    at ``peak`` (fraction of the duration, 0.4 typical), shape parameters b = 10 min, n = 0.7."""
    duration = max(e.end - e.start, 60.0)
    r, b, n = e.param("peak", 0.4), 10.0, 0.7
    grid = np.linspace(0.0, duration, 1001)
    shape = _chicago(grid / 60.0, duration / 60.0, r, b, n)
    total = float(np.sum((shape[1:] + shape[:-1]) / 2 * np.diff(grid))) / 3600.0  # mm for unit a
    scale = e.magnitude / total if total > 0 else 0.0
    tau = t - e.start
    inside = (tau >= 0) & (tau < duration)
    out = np.zeros_like(t)
    out[inside] = scale * _chicago(tau[inside] / 60.0, duration / 60.0, r, b, n)
    return out


def _chicago(minutes: Array, duration_min: float, r: float, b: float, n: float) -> Array:
    peak = r * duration_min
    before = minutes < peak
    tb = np.where(before, (peak - minutes) / max(r, 1e-6), (minutes - peak) / max(1 - r, 1e-6))
    return np.asarray(((1 - n) * tb + b) / (tb + b) ** (1 + n), dtype=np.float64)


def rain(t: Array, effects: Sequence[Effect]) -> Array:
    total = np.zeros_like(t)
    for e in effects:
        if e.kind == "rain":
            total = total + storm_intensity(t, e)
    return total


def rain_5min(ts: Array, effects: Sequence[Effect]) -> Array:
    """mm fallen in the 5 minutes before each sample (integrated on a 10 s grid)."""
    out = np.zeros_like(ts)
    offsets = np.arange(-300.0 + 5.0, 0.0, 10.0)
    for off in offsets:
        out = out + rain(ts + off, effects) * 10.0 / 3600.0
    return out


def _storage(ts: Array, effects: Sequence[Effect], capacity: float, lag_s: float, drain_s: float,
             runoff: float) -> Array:
    """Water held at the site (mm over the catchment) sampled at ``ts``: the rainfall above
    ``capacity`` (mm/h), times ``runoff``, lagged by ``lag_s`` into a store emptying with ``drain_s``."""
    if ts.size == 0:
        return np.zeros(0)
    grid = np.arange(ts[0] - 3600.0, ts[-1] + STEP_S, STEP_S)
    excess = np.maximum(rain(grid, effects) * runoff - capacity, 0.0) / 3600.0  # mm/s
    drain = np.full(grid.size, drain_s)
    for e in effects:
        if e.kind == "pump_failure":
            inside = (grid >= e.start) & (grid < e.end)
            drain[inside] = drain_s * e.param("slowdown", 10.0)
    lagged, store = 0.0, 0.0
    held = np.zeros(grid.size)
    a = STEP_S / lag_s
    for i in range(grid.size):
        lagged += a * (excess[i] - lagged)
        store = max(store + STEP_S * (lagged - store / drain[i]), 0.0)
        held[i] = store
    return np.asarray(np.interp(ts, grid, held), dtype=np.float64)


def simulate(
    sensor: Sensor, ts: Array, rng: np.random.Generator, effects: Sequence[Effect], seed: int = 0
) -> Metrics:
    out: Metrics = {}
    if "rain_mm_5min" in sensor.metrics:
        # tipping bucket: 0.1 mm resolution (round in the writer)
        out["rain_mm_5min"] = rain_5min(ts, effects)
    if "depth_cm" in sensor.metrics:
        capacity = label(sensor, "capacity_mm_h", 35.0)
        d_max = label(sensor, "max_depth_cm", 60.0)
        s0 = label(sensor, "storage_mm", 12.0)
        stored = _storage(ts, effects, capacity, lag_s=600.0, drain_s=1200.0, runoff=1.0)
        depth = d_max * (1.0 - np.exp(-stored / s0))
        out["depth_cm"] = np.clip(depth + rng.normal(0.0, 0.15, ts.size), 0.0, None)
    if "fill_ratio" in sensor.metrics:
        base = label(sensor, "base_fill", 0.35)
        # dry-weather sewage follows the day: low at night, peak mid-morning (⚠INF)
        dry = base * (1.0 + 0.15 * np.sin(2 * np.pi * (local_hours(ts) - 5.0) / 24.0))
        stored = _storage(ts, effects, 0.0, lag_s=900.0, drain_s=1800.0, runoff=0.6)
        wet = (1.15 - dry) * (1.0 - np.exp(-stored / label(sensor, "storage_mm", 15.0)))
        out["fill_ratio"] = np.clip(dry + wet + ar1(rng, ts.size, 0.9, 0.01), 0.0, None)
    return out


def expand_storm(incident: Incident, registry: Registry) -> list[Effect]:
    """A rainstorm over a district (or ``all``): ``magnitude`` mm over the incident's duration."""
    return [Effect(kind="rain", sensor=s.id, start=incident.start, end=incident.end,
                   magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index)
            for s in resolve(registry, incident.target, DOMAIN)]


def expand_pump(incident: Incident, registry: Registry) -> list[Effect]:
    """A pump trip at an underpass: drain-down ``slowdown`` (default 10x) slower during the window."""
    return [Effect(kind="pump_failure", sensor=s.id, start=incident.start, end=incident.end,
                   magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index)
            for s in resolve(registry, incident.target, DOMAIN, "depth_cm")]


INCIDENTS = {"rainstorm": expand_storm, "pump_failure": expand_pump}
